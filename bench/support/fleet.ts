/**
 * A simulated fleet: polling Tentacles (the real agent, bench/roles/tentacles.ts) spread
 * over a few worker processes, with their home directories on tmpfs. Real Tentacles each
 * have a disk of their own; a thousand simulated ones sharing this machine's one disk
 * would measure its fsync latency, not Reef.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertificateIdentity } from '../../src/pki/certificate.js';
import type { operations, TentacleGroup } from '../roles/tentacles.js';
import type { BenchContext } from './benchmark.js';
import { startWorkers, type Worker } from './workers.js';

/** Which server the tentacles of a group poll, and how; and which certificates they use. */
export interface FleetGroup extends Pick<TentacleGroup, 'serverThumbprint' | 'address' | 'resolve' | 'proxyPort'> {
  identities: readonly CertificateIdentity[];
  /** Tentacles connecting at the same time, per process (default 32). */
  window?: number;
  connectTimeoutMs?: number;
}

export interface Fleet {
  readonly workers: readonly Worker<typeof operations>[];
  /**
   * Starts `count` more tentacles of a group, dealt out evenly over the processes (each
   * process with identities of its own); resolves with their home directories once all
   * have connected.
   */
  grow(group: FleetGroup, count: number): Promise<string[]>;
  /** Failed connection attempts so far over every process, by error code. */
  failures(): Promise<Record<string, number>>;
}

/** Where simulated tentacles keep their homes: tmpfs when the machine has it. */
export async function tentacleRoot(context: BenchContext): Promise<string> {
  const root = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'reef-bench-tentacles-'));
  context.defer(() => rm(root, { recursive: true, force: true, maxRetries: 3 }));
  return root;
}

export interface FleetOptions {
  /** The processes' nice level (0 or absent: the caller's priority), so the fleet's CPU does not come out of the server's share. */
  nice?: number;
}

export async function startFleet(context: BenchContext, processes: number, options: FleetOptions = {}): Promise<Fleet> {
  const root = await tentacleRoot(context);
  const workers = await startWorkers<typeof operations>('tentacles', processes, options.nice ? { wrapper: ['nice', '-n', String(options.nice)] } : {});
  return {
    workers,
    async grow(group, count) {
      const homes = await Promise.all(
        workers.map(async (worker, k) => {
          const mine = share(count, workers.length, k);
          if (mine === 0) return [];
          const own = group.identities.filter((_, i) => i % workers.length === k);
          const { homes } = await worker.call('start', {
            identities: own.length ? own : [...group.identities],
            count: mine,
            serverThumbprint: group.serverThumbprint,
            address: group.address,
            resolve: group.resolve,
            proxyPort: group.proxyPort,
            root: join(root, String(k)),
            window: group.window ?? 32,
            connectTimeoutMs: group.connectTimeoutMs ?? 60_000,
          });
          return homes;
        }),
      );
      return homes.flat();
    },
    async failures() {
      const total: Record<string, number> = {};
      for (const counts of await Promise.all(workers.map((worker) => worker.call('failures')))) {
        for (const [code, n] of Object.entries(counts)) total[code] = (total[code] ?? 0) + n;
      }
      return total;
    },
  };
}

/** The k-th of `parts` near-equal shares of `total`. */
export function share(total: number, parts: number, k: number): number {
  return Math.floor(total / parts) + (k < total % parts ? 1 : 0);
}

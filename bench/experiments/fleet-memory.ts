/**
 * Where the server's memory per idle link goes (the fleet benchmark's figure, issue 18):
 * one server process holds N idle connections, and its memory is broken down before and
 * after, per connection: process RSS, V8's heap spaces, Node's external memory, the
 * anonymous mappings of /proc/PID/smaps, and glibc's own account (malloc_info through gdb:
 * bytes held from the system, and how many of those are free inside the heap). At the end,
 * the main arena's chunks by size, with how much of each is resident (heap-chunks.ts): a
 * TLS connection's 64 KiB read buffer costs a page or two while its memory was never
 * written before, and all of it when it was carved out of memory something else wrote and
 * freed. gdb and the chunk walk need root; --no-malloc-info leaves both out.
 *
 *   node --import tsx bench/experiments/fleet-memory.ts [--server=reef|comms|tls]
 *     [--per-connection=nothing|select|select-later|ping] (comms only)
 *     [--tentacles=2000] [--processes=2] [--window=32] [--no-malloc-info]
 *     [--heaptrack=FILE] [--reef-without=WORD,...] [--trace-sql] [--perf-events=EVENT,...]
 *     [--rounds=N]
 *
 * `reef` is the real server (as in the fleet benchmark), `comms` a CommsServer alone
 * (bench/roles/comms-server.ts), `tls` a bare mutual-TLS listener. The Tentacles are the
 * real agent, in client processes (the `tls` server gets bare TLS clients). The
 * environment reaches every process: MALLOC_ARENA_MAX, LD_PRELOAD and the like apply to
 * all of them. Prints one JSON object.
 *
 * --reef-without leaves out the real server's 'connected' listeners whose source text has
 * one of the words (presence.connected, forThumbprint, getMachineByNextThumbprint, visit),
 * to tell which per-connection work costs what.
 *
 * --trace-sql (reef) lists the SQLite statements the server ran while the links came, with
 * those of their plans' opcodes that build a temporary b-tree or a sorter.
 *
 * --perf-events counts perf events in the server while the links come (`perf stat -p`), e.g.
 * SQLite's temporary b-trees (each one allocates and writes a page cache, ~85 KiB, and frees
 * it): `perf probe -x node_modules/better-sqlite3/build/Release/better_sqlite3.node
 * sqlite3BtreeOpen` once, then --perf-events=probe_better_sqlite3:sqlite3BtreeOpen (and
 * `perf probe -d 'probe_better_sqlite3:*'` when done).
 *
 * --rounds=N (reef, comms): after the first measurement the Tentacle processes are killed
 * (the server sees every link close), and a new fleet of as many connects; N rounds in all,
 * each measured against the server before the first: what churn leaves behind.
 *
 * --heaptrack=FILE runs the server under heaptrack (no malloc_info then) and ends it first,
 * links still open, so that `heaptrack_print --print-leaks FILE.zst` lists by call stack
 * what was still allocated: the links' part is what comes about N (or a multiple) times.
 * (heaptrack's own messages go to the same stdout as the JSON.)
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { operations as commsOperations, PerConnection } from '../roles/comms-server.js';
import type { operations as tlsOperations } from '../roles/tls.js';
import type { BenchContext } from '../support/benchmark.js';
import { share, startFleet } from '../support/fleet.js';
import { tentacleIdentities } from '../support/identities.js';
import { heapChunks } from '../support/heap-chunks.js';
import { mallocInfo, type MallocInfo } from '../support/malloc-info.js';
import type { MemoryBreakdown } from '../support/memory-breakdown.js';
import { startServerWorker } from '../support/server-worker.js';
import { certificatesFor } from '../support/limits.js';
import { startWorker, startWorkers, stopAllWorkers, type Worker } from '../support/workers.js';

const { values } = parseArgs({
  options: {
    server: { type: 'string', default: 'reef' },
    'per-connection': { type: 'string', default: 'nothing' },
    tentacles: { type: 'string', default: '2000' },
    processes: { type: 'string', default: '2' },
    window: { type: 'string', default: '32' },
    'no-malloc-info': { type: 'boolean', default: false },
    heaptrack: { type: 'string' },
    'reef-without': { type: 'string', default: '' },
    'trace-sql': { type: 'boolean', default: false },
    'perf-events': { type: 'string' },
    rounds: { type: 'string', default: '1' },
  },
});
const count = Number(values.tentacles);
const processes = Number(values.processes);
const window = Number(values.window);
const server = values.server!;
const wrapper = values.heaptrack ? ['heaptrack', '-o', values.heaptrack] : undefined;

type Measurable = Worker<{ breakdown(): Promise<MemoryBreakdown>; links(): Promise<number> }>;

const cleanups: (() => unknown)[] = [];
const context: BenchContext = {
  param: (_, fallback) => fallback,
  log: (message) => process.stderr.write(`[fleet-memory] ${message}\n`),
  defer: (cleanup) => cleanups.push(cleanup),
};

async function snapshot(worker: Measurable): Promise<{ breakdown: MemoryBreakdown; malloc?: MallocInfo }> {
  const breakdown = await worker.call('breakdown');
  return { breakdown, malloc: values['no-malloc-info'] || values.heaptrack ? undefined : await mallocInfo(worker.pid) };
}

try {
  const identities = await tentacleIdentities(Math.min(certificatesFor(count), count) + 1);
  const serverIdentity = identities.pop()!;
  let measured: Measurable;
  let reefWorker: Awaited<ReturnType<typeof startServerWorker>>['worker'] | undefined;
  let connect: () => Promise<unknown>;
  /** Kills the Tentacle processes of the last connect (not for tls). */
  let disconnect: (() => Promise<void>) | undefined;
  if (server === 'tls') {
    const listener = await startWorker<typeof tlsOperations>('tls', 'tls listener', { wrapper });
    const port = await listener.call('listen', { identity: serverIdentity, mode: 'hold' });
    const clients = await startWorkers<typeof tlsOperations>('tls', processes);
    measured = { ...listener, call: (op: 'breakdown' | 'links') => (op === 'links' ? listener.call('open') : listener.call('breakdown')) } as Measurable;
    connect = () => Promise.all(clients.map((client, k) => client.call('hold', { identity: identities[k % identities.length]!, port, count: share(count, processes, k), window })));
  } else {
    let commsPort: number;
    let thumbprint: string;
    if (server === 'comms') {
      const worker = await startWorker<typeof commsOperations>('comms-server', 'comms server', { wrapper });
      ({ commsPort, thumbprint } = await worker.call('start', { identity: serverIdentity, perConnection: values['per-connection'] as PerConnection }));
      measured = worker as unknown as Measurable;
    } else if (server === 'reef') {
      const withoutConnected = values['reef-without']!.split(',').filter(Boolean);
      const reef = await startServerWorker(identities, undefined, { wrapper, withoutConnected });
      cleanups.push(() => rm(reef.dataDir, { recursive: true, force: true }));
      ({ commsPort, thumbprint } = reef);
      measured = reef.worker as unknown as Measurable;
      reefWorker = reef.worker;
    } else throw new Error(`--server=${server}: expected reef, comms or tls`);
    let fleet: Awaited<ReturnType<typeof startFleet>> | undefined;
    connect = async () => {
      fleet = await startFleet(context, processes);
      await fleet.grow({ identities, serverThumbprint: thumbprint, address: `tcp://127.0.0.1:${commsPort}`, window }, count);
    };
    disconnect = async () => {
      await Promise.all(fleet!.workers.map((worker) => worker.stop('SIGKILL')));
    };
  }
  const before = await snapshot(measured);
  if (values['trace-sql']) await reefWorker?.call('traceSql');
  context.log(`${server}: connecting ${count} in ${processes} processes`);
  const counting = values['perf-events'] ? countEvents(measured.pid, values['perf-events']) : undefined;
  const started = performance.now();
  await connect();
  const connectSeconds = (performance.now() - started) / 1000;
  const events = await counting?.stop();
  const links = await measured.call('links');
  const after = await snapshot(measured);
  const chunks = values['no-malloc-info'] || values.heaptrack ? undefined : await heapChunks(measured.pid);
  const sqlite = values['trace-sql'] ? await reefWorker?.call('tracedSql') : undefined;
  const rounds: { round: number; links: number; rssKiB: number; heapKiB: number; readBuffer?: string }[] = [];
  for (let round = 2; round <= Number(values.rounds); round++) {
    if (!disconnect) throw new Error('--rounds: reef or comms only');
    await disconnect();
    for (let waited = 0; (await measured.call('links')) > 0; waited++) {
      if (waited > 600) throw new Error('the server still holds links 60 s after their Tentacles were killed');
      await sleep(100);
    }
    context.log(`round ${round}: connecting ${count} again`);
    await connect();
    const again = await snapshot(measured);
    const held = await measured.call('links');
    const readBuffer = values['no-malloc-info'] || values.heaptrack ? undefined : (await heapChunks(measured.pid)).largestInUse.find((c) => c.size === 65552);
    rounds.push({
      round,
      links: held,
      rssKiB: round1((again.breakdown.memoryUsage.rss - before.breakdown.memoryUsage.rss) / 1024 / held),
      heapKiB: round1((again.breakdown.memoryUsage.heapUsed - before.breakdown.memoryUsage.heapUsed) / 1024 / held),
      readBuffer: readBuffer && `${readBuffer.count} x 64 KiB, ${round1(readBuffer.resident / 1024 / held)} KiB resident per link`,
    });
  }
  // Ends at once (process.exit), every link still held: what they hold counts as leaked.
  if (values.heaptrack) await measured.stop();
  console.log(JSON.stringify({ server, reefWithout: values['reef-without'] || undefined, perConnection: server === 'comms' ? values['per-connection'] : undefined, links, connectSeconds: round1(connectSeconds), perLinkKiB: perLink(before, after, links), glibcBefore: before.malloc && { trimThreshold: before.malloc.trimThreshold, mmapThreshold: before.malloc.mmapThreshold, topChunk: before.malloc.topChunk }, after: summary(after), events: events && Object.fromEntries(Object.entries(events).map(([event, n]) => [event, { total: n, perLink: round1(n / links) }])), chunks: chunks && describeChunks(chunks, links), sqlite, rounds: rounds.length ? rounds : undefined }, null, 1));
} finally {
  await stopAllWorkers();
  for (const cleanup of cleanups.reverse()) await cleanup();
}

/** `perf stat` on a process until stopped: each event's count. */
function countEvents(pid: number, events: string) {
  const perf = spawn('perf', ['stat', '-x', ',', '-e', events, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  perf.stderr!.on('data', (chunk: Buffer) => void (output += chunk.toString()));
  return {
    async stop(): Promise<Record<string, number>> {
      const exited = once(perf, 'exit');
      perf.kill('SIGINT');
      await exited;
      const counts: Record<string, number> = {};
      for (const line of output.split('\n')) {
        const [value, , event] = line.split(',');
        if (event && value !== undefined && /^\d+$/.test(value)) counts[event] = Number(value);
      }
      return counts;
    },
  };
}

/** What the links added, in KiB per link, by account. */
function perLink(before: Awaited<ReturnType<typeof snapshot>>, after: Awaited<ReturnType<typeof snapshot>>, links: number) {
  const kib = (a: number, b: number) => round1((b - a) / 1024 / links);
  const b = before.breakdown;
  const a = after.breakdown;
  const result: Record<string, number> = {
    rss: kib(b.memoryUsage.rss, a.memoryUsage.rss),
    heapTotal: kib(b.memoryUsage.heapTotal, a.memoryUsage.heapTotal),
    heapUsed: kib(b.memoryUsage.heapUsed, a.memoryUsage.heapUsed),
    external: kib(b.memoryUsage.external, a.memoryUsage.external),
    arrayBuffers: kib(b.memoryUsage.arrayBuffers, a.memoryUsage.arrayBuffers),
  };
  for (const kind of new Set([...Object.keys(a.smaps), ...Object.keys(b.smaps)])) result[`smaps ${kind}`] = kib(b.smaps[kind]?.rss ?? 0, a.smaps[kind]?.rss ?? 0);
  if (before.malloc && after.malloc) {
    result['malloc held'] = kib(before.malloc.system, after.malloc.system);
    result['malloc free inside'] = kib(before.malloc.free, after.malloc.free);
    result['malloc in use'] = kib(before.malloc.system - before.malloc.free, after.malloc.system - after.malloc.free);
    result['malloc mmap blocks'] = kib(before.malloc.mmap, after.malloc.mmap);
  }
  return result;
}

function summary({ breakdown, malloc }: Awaited<ReturnType<typeof snapshot>>) {
  const mib = (n: number) => round1(n / 2 ** 20);
  return {
    rssMiB: mib(breakdown.memoryUsage.rss),
    smapsMiB: Object.fromEntries(Object.entries(breakdown.smaps).map(([kind, { rss, mappings }]) => [kind, `${mib(rss)} (${mappings})`])),
    arenasMiB: malloc?.arenas.map(({ arena, system, free }) => `${arena}: ${mib(system)} held, ${mib(free)} free`),
    glibc: malloc && { trimThreshold: malloc.trimThreshold, mmapThreshold: malloc.mmapThreshold, topChunk: malloc.topChunk },
  };
}

/** The main arena's chunks after: in use and free, resident or not, in MiB; the largest size classes per link. */
function describeChunks(chunks: Awaited<ReturnType<typeof heapChunks>>, links: number) {
  const mib = (n: number) => round1(n / 2 ** 20);
  return {
    heapMiB: mib(chunks.heapBytes),
    heapResidentMiB: mib(chunks.heapResident),
    walkedMiB: mib(chunks.walkedBytes),
    inUseMiB: { bytes: mib(chunks.inUse.bytes), resident: mib(chunks.inUse.resident) },
    freeMiB: { bytes: mib(chunks.free.bytes), resident: mib(chunks.free.resident) },
    largestInUse: chunks.largestInUse.map(({ size, count, bytes, resident }) => `${size} B x ${count}: ${round1(bytes / 1024 / links)} KiB per link, ${round1(resident / 1024 / links)} resident`),
  };
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/**
 * A real Reef server in a worker process (bench/roles/reef-server.ts), with one polling
 * machine registered per tentacle certificate: for the benchmarks that measure the server
 * process alone (its memory) or restart it.
 */
import { fileURLToPath } from 'node:url';
import { distState } from '../../scripts/build.js';
import type { CommsLimits } from '../../src/comms/limits.js';
import type { CertificateIdentity } from '../../src/pki/certificate.js';
import type { operations } from '../roles/reef-server.js';
import { startWorker, type Worker, type WorkerOptions } from './workers.js';

export interface ServerWorker {
  worker: Worker<typeof operations>;
  thumbprint: string;
  commsPort: number;
  httpsPort: number;
  dataDir: string;
  /** An API key of the server, for a client in the benchmark's process. */
  apiKey: string;
}

/** A node of a cluster: every node on one PostgreSQL store, each under a name of its own, sharing one files directory. */
export interface ClusterNodeSettings {
  store: string;
  nodeName: string;
  filesDir: string;
}

/**
 * Starts a server, with `identities` registered as machines `bench-1`, `bench-2`, ... (a
 * cluster registers them through one node: the store is shared); a restart passes the
 * data directory and ports of the first start (machines are then already registered).
 */
export async function startServerWorker(
  identities: readonly CertificateIdentity[],
  restartOf?: ServerWorker,
  /** `withoutConnected`: for experiments, see bench/roles/reef-server.ts. `cluster`: a node of a cluster. */
  { withoutConnected, cluster, ...options }: WorkerOptions & { withoutConnected?: string[]; cluster?: ClusterNodeSettings } = {},
): Promise<ServerWorker> {
  const worker = await startWorker<typeof operations>('reef-server', cluster ? `reef server ${cluster.nodeName}` : 'reef server', options);
  const started = await worker.call(
    'start',
    restartOf
      ? { dataDir: restartOf.dataDir, commsPort: restartOf.commsPort, httpsPort: restartOf.httpsPort, withoutConnected, ...cluster }
      : { machines: identities.map((identity, i) => ({ name: `bench-${i + 1}`, thumbprint: identity.thumbprint })), withoutConnected, ...cluster },
  );
  return { worker, ...started };
}

/** The operations of dist-server-main.mjs (the built server, run with plain node). */
export type DistServerOperations = {
  start(args: { dataDir: string; commsPort: number; httpsPort: number; limits?: Partial<CommsLimits> }): Promise<{ listeningMs: number; enteredMs: number; importedMs: number; commsPort: number; httpsPort: number; thumbprint: string }>;
  links(): Promise<number>;
  admission(): Promise<{ handshakesInFlight: number; eventLoopDelayMs: number }>;
  handshakes(): Promise<{ resumed: number; full: number }>;
  cpuMs(): Promise<number>;
};

const DIST_SERVER_ENTRY = fileURLToPath(new URL('./dist-server-main.mjs', import.meta.url));

/**
 * Starts the server again from the built dist/ with plain node, as production does, on the
 * data and ports of `restartOf`. `startToListeningMs`: from this process's start (its
 * performance.timeOrigin) until every port listened. Refuses a dist/ older than src/.
 */
export async function restartFromDist(restartOf: ServerWorker, limits: Partial<CommsLimits> = {}): Promise<{ worker: Worker<DistServerOperations>; startToListeningMs: number; startBreakdownMs: { nodeStart: number; loadDist: number; startReefServer: number } }> {
  const state = await distState();
  if (state.state !== 'fresh') throw new Error(`dist/ is ${state.state === 'missing' ? 'missing' : `older than ${state.newer}`}: run "npm run build" first`);
  const worker = await startWorker<DistServerOperations>('dist-server', 'reef server (dist)', { entry: DIST_SERVER_ENTRY });
  const started = await worker.call('start', { dataDir: restartOf.dataDir, commsPort: restartOf.commsPort, httpsPort: restartOf.httpsPort, limits });
  return {
    worker,
    startToListeningMs: started.listeningMs,
    startBreakdownMs: {
      nodeStart: Math.round(started.enteredMs),
      loadDist: Math.round(started.importedMs - started.enteredMs),
      startReefServer: Math.round(started.listeningMs - started.importedMs),
    },
  };
}

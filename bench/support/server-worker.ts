/**
 * A real Reef server in a worker process (bench/roles/reef-server.ts), with one polling
 * machine registered per tentacle certificate: for the benchmarks that measure the server
 * process alone (its memory) or restart it.
 */
import type { CertificateIdentity } from '../../src/pki/certificate.js';
import type { operations } from '../roles/reef-server.js';
import { startWorker, type Worker } from './workers.js';

export interface ServerWorker {
  worker: Worker<typeof operations>;
  thumbprint: string;
  commsPort: number;
  httpsPort: number;
  dataDir: string;
}

/** Starts a server; a restart passes the data directory and ports of the first start (machines are then already registered). */
export async function startServerWorker(identities: readonly CertificateIdentity[], restartOf?: ServerWorker): Promise<ServerWorker> {
  const worker = await startWorker<typeof operations>('reef-server', 'reef server');
  const started = await worker.call(
    'start',
    restartOf
      ? { dataDir: restartOf.dataDir, commsPort: restartOf.commsPort, httpsPort: restartOf.httpsPort }
      : { machines: identities.map((identity, i) => ({ name: `bench-${i + 1}`, thumbprint: identity.thumbprint })) },
  );
  return { worker, ...started };
}

/**
 * Tentacle certificates for a run. Making one takes about 10 ms of CPU, so the pool is
 * made once per `npm run bench` (shared by every benchmark) and in parallel on every core.
 */
import { cpus } from 'node:os';
import type { CertificateIdentity } from '../../src/pki/certificate.js';
import type { operations } from '../roles/identities.js';
import { startWorkers } from './workers.js';

const pool: CertificateIdentity[] = [];

export async function tentacleIdentities(count: number): Promise<CertificateIdentity[]> {
  const missing = count - pool.length;
  if (missing > 0) {
    const workers = await startWorkers<typeof operations>('identities', Math.min(cpus().length, Math.ceil(missing / 50)));
    const share = Math.ceil(missing / workers.length);
    const made = await Promise.all(workers.map((worker, i) => worker.call('generate', { count: Math.min(share, missing - i * share), prefix: `bench-tentacle-${pool.length + i * share}` })));
    await Promise.all(workers.map((worker) => worker.stop()));
    pool.push(...made.flat());
  }
  return pool.slice(0, count);
}

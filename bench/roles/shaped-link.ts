/**
 * Worker role for the small-calls benchmark: a real Reef server inside a network namespace,
 * with the REST client a user would point at it and the bare TLS copy of the baseline,
 * which must run in the same namespace to cross the same shaped link.
 */
import type { UploadedFile } from '../../src/api/contract.js';
import type { CertificateIdentity } from '../../src/pki/certificate.js';
import { payload, timePush, uploadPayload } from '../support/payload.js';
import { connectRawTls, copyTo } from '../support/raw-tls.js';
import { registerMachines, runTask, startBenchServer, type BenchServer } from '../support/reef-server.js';
import { since } from '../support/stats.js';

let bench: BenchServer | undefined;
let file: UploadedFile | undefined;

function running(): BenchServer {
  if (!bench) throw new Error('start the server first');
  return bench;
}

export const operations = {
  async start({ host, dataDir, machine }: { host: string; dataDir: string; machine: { name: string; thumbprint: string } }): Promise<{ thumbprint: string; commsPort: number }> {
    bench = await startBenchServer({ host, dataDir });
    await registerMachines(bench.server, [machine]);
    return { thumbprint: bench.thumbprint, commsPort: bench.server.commsPort };
  },

  /** Uploads `size` bytes to the server (over its own loopback: not what is measured). */
  async upload({ size }: { size: number }): Promise<void> {
    file = await uploadPayload(running().api, size);
  },

  /** A push-file task of the uploaded file, API call to task end; ms. */
  async push({ machine, destination }: { machine: string; destination: string }): Promise<number> {
    if (!file) throw new Error('upload a file first');
    return timePush(running().api, machine, file, destination);
  },

  /** A one-line script task (`echo`), API call to task end; ms. */
  async script({ machine }: { machine: string }): Promise<number> {
    const started = performance.now();
    const task = await runTask(running().api, { kind: 'run-script', target: { machines: [machine] }, script: { syntax: 'bash', body: 'echo small call' } });
    if (task.state !== 'Success') throw new Error(`run-script task ${task.id} ended ${task.state}: ${task.error}`);
    return since(started);
  },

  /** `size` bytes over one bare mutual-TLS socket to a sink; ms. */
  async copy({ identity, host, port, size }: { identity: CertificateIdentity; host: string; port: number; size: number }): Promise<number> {
    const socket = await connectRawTls(identity, port, host);
    try {
      const started = performance.now();
      await copyTo(socket, payload(size), size);
      return since(started);
    } finally {
      socket.destroy();
    }
  },

  async stop(): Promise<void> {
    await bench?.close();
  },
};

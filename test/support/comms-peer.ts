/**
 * One end of a comms link in a process of its own, for tests that put each end in a
 * network namespace (test/support/netns.ts): `node --import tsx comms-peer.ts server|tentacle`.
 *
 * Settings come in the environment as JSON (REEF_PEER: { host, port, limits, server,
 * tentacle }, the identities with their PEM). Each process writes one JSON line per event to
 * stdout: `{"event":"connected"}`, `{"event":"disconnected","code":...,"message":...}`,
 * and the server answers commands read from stdin, one JSON line each:
 * `{"id":1,"op":"upload","size":N}` (a call with an N-byte body; the Tentacle counts it) and
 * `{"id":2,"op":"echo"}`, with `{"id":1,"ok":true,"ms":...,"result":...}` or `{"id":1,"ok":false,"code":...,"message":...}`.
 */
import { createInterface } from 'node:readline';
import { CommsServer, TentacleComms, type CommsLimits, type Handler, type RpcClient } from '../../src/comms/index.js';
import type { CertificateIdentity } from '../../src/pki/certificate.js';
import { bytes } from './shaped-pipe.js';

interface PeerSettings {
  host: string;
  port: number;
  limits: Partial<CommsLimits>;
  server: CertificateIdentity;
  tentacle: CertificateIdentity;
}

const role = process.argv[2];
const settings = JSON.parse(process.env.REEF_PEER ?? '{}') as PeerSettings;
const say = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ at: Date.now(), ...line })}\n`);
const codeOf = (err: unknown) => (err as { code?: string } | undefined)?.code;
const messageOf = (err: unknown) => (err instanceof Error ? err.message : undefined);


if (role === 'tentacle') {
  const upload: Handler = async (_args, { body }) => {
    let size = 0;
    for await (const chunk of body!) size += (chunk as Buffer).length;
    return { size };
  };
  const comms = new TentacleComms({
    identity: settings.tentacle,
    limits: settings.limits,
    services: new Map<string, Handler>([
      ['upload', upload],
      ['echo', async (args) => args],
    ]),
  });
  const poller = comms.poll({ host: settings.host, port: settings.port, carrier: 'tcp', trusted: () => [settings.server.thumbprint] });
  poller.on('connected', () => say({ event: 'connected' }));
  poller.on('disconnected', (reason) => say({ event: 'disconnected', code: codeOf(reason), message: messageOf(reason) }));
  process.on('SIGTERM', () => void comms.close().then(() => process.exit(0)));
} else if (role === 'server') {
  const server = new CommsServer({ identity: settings.server, trust: (tp) => tp === settings.tentacle.thumbprint, limits: settings.limits });
  await server.listen(settings.port, settings.host);
  server.on('connected', () => say({ event: 'connected' }));
  server.on('disconnected', (_client: RpcClient, reason) => say({ event: 'disconnected', code: codeOf(reason), message: messageOf(reason) }));
  const target = { thumbprint: settings.tentacle.thumbprint };
  say({ event: 'listening' });
  for await (const line of createInterface({ input: process.stdin })) {
    const command = JSON.parse(line) as { id: number; op: string; size?: number };
    const started = performance.now();
    const call =
      command.op === 'upload'
        ? server.call(target, 'upload', {}, { body: bytes(command.size ?? 0), deadlineMs: 0, pickupTimeoutMs: 30_000 })
        : server.call(target, 'echo', { id: command.id }, { pickupTimeoutMs: 30_000 });
    call.then(
      (result) => say({ id: command.id, ok: true, ms: performance.now() - started, result }),
      (err: unknown) => say({ id: command.id, ok: false, ms: performance.now() - started, code: codeOf(err), message: messageOf(err) }),
    );
  }
  await server.close();
} else {
  process.stderr.write('usage: comms-peer.ts server|tentacle (settings in REEF_PEER)\n');
  process.exit(2);
}

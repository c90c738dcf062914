/**
 * Server-side memory per connection: N polling Tentacle connections (the real comms code,
 * HTTP/2 over pinned mutual TLS) against N bare mutual-TLS sockets, measured in the same
 * run. A child process holds the listener and reports its RSS after GC; the clients live
 * in another child process, so their memory is not counted.
 *
 *   node --import tsx bench/connection-memory.ts [N]     (default 1000)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { generateCertificate, type CertificateIdentity } from '../src/pki/certificate.js';
import { CommsServer, TentacleComms } from '../src/comms/index.js';
import { baseTlsOptions } from '../src/comms/tls-config.js';

type Mode = 'reef' | 'tls';
const self = fileURLToPath(import.meta.url);

async function serverRole(mode: Mode, identity: CertificateIdentity) {
  let connections = 0;
  let port: number;
  if (mode === 'reef') {
    const server = new CommsServer({ identity, trust: () => true, limits: { heartbeatIntervalMs: 60_000 } });
    server.on('connected', () => connections++);
    port = await server.listen(0, '127.0.0.1');
  } else {
    const server = tls.createServer({ ...baseTlsOptions(identity), requestCert: true }, (socket) => {
      connections++;
      socket.on('error', () => {});
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  }
  process.on('message', async (msg: { ask: string }) => {
    if (msg.ask === 'rss') {
      for (let i = 0; i < 3; i++) {
        global.gc?.();
        await new Promise((r) => setTimeout(r, 200));
      }
      process.send!({ rss: process.memoryUsage().rss, connections });
    }
  });
  process.send!({ port });
}

async function clientRole(mode: Mode, port: number, count: number, server: CertificateIdentity, identity: CertificateIdentity) {
  const held: unknown[] = [];
  for (let i = 0; i < count; i++) {
    if (mode === 'reef') {
      const comms = new TentacleComms({ identity, services: new Map(), limits: { heartbeatIntervalMs: 60_000 } });
      const poller = comms.poll({ host: '127.0.0.1', port, carrier: 'tcp', trusted: () => [server.thumbprint] });
      await once(poller, 'connected');
      held.push(comms);
    } else {
      const socket = tls.connect({ ...baseTlsOptions(identity), host: '127.0.0.1', port });
      await once(socket, 'secureConnect');
      held.push(socket);
    }
  }
  process.send!({ connected: held.length });
}

async function measure(mode: Mode, count: number, server: CertificateIdentity, client: CertificateIdentity) {
  const start = (role: string, ...args: string[]) => fork(self, [role, mode, ...args], { execArgv: ['--import', 'tsx', '--expose-gc'], serialization: 'advanced' });
  const listener = start('server');
  listener.send({ identity: server });
  const [{ port }] = (await once(listener, 'message')) as [{ port: number }];
  const ask = async (child: ChildProcess) => {
    child.send({ ask: 'rss' });
    return ((await once(child, 'message')) as [{ rss: number; connections: number }])[0];
  };
  const before = await ask(listener);
  const clients = start('client', String(port), String(count));
  clients.send({ server, identity: client });
  await once(clients, 'message');
  const after = await ask(listener);
  clients.kill();
  listener.kill();
  return { mode, connections: after.connections, rssBeforeMiB: before.rss / 2 ** 20, rssAfterMiB: after.rss / 2 ** 20, perConnectionKiB: (after.rss - before.rss) / 1024 / count };
}

const [role, mode] = process.argv.slice(2) as [string | undefined, Mode];
if (role === 'server') {
  process.once('message', (msg: { identity: CertificateIdentity }) => void serverRole(mode, msg.identity));
} else if (role === 'client') {
  const [port, count] = process.argv.slice(4).map(Number) as [number, number];
  process.once('message', (msg: { server: CertificateIdentity; identity: CertificateIdentity }) => void clientRole(mode, port, count, msg.server, msg.identity));
} else {
  const count = Number(process.argv[2] ?? 1000);
  const server = await generateCertificate('bench server');
  const client = await generateCertificate('bench tentacle');
  const baseline = await measure('tls', count, server, client);
  const reef = await measure('reef', count, server, client);
  const result = { benchmark: 'connection-memory', node: process.version, count, baseline, reef, ratio: reef.perConnectionKiB / baseline.perConnectionKiB };
  console.log(JSON.stringify(result, null, 2));
}

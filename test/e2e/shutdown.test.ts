/**
 * A real `reef server run` process: SIGTERM with slow clients attached ends it within
 * seconds, and a taken port ends the start-up with a clear message and exit code 1.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import { cli, freePort, startServer, stopAll, tempDir } from './harness.js';

const dirs: string[] = [];

after(async () => {
  await stopAll();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function dataDir(): Promise<string> {
  const dir = await tempDir('shutdown');
  dirs.push(dir);
  return dir;
}

/** Connects and then sends one byte of `text` every 500 ms, for as long as the socket lives. */
async function slowClient(port: number, text: string, secure: boolean): Promise<net.Socket> {
  const socket: net.Socket = secure
    ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
    : net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  await once(socket, secure ? 'secureConnect' : 'connect');
  let i = 0;
  const timer = setInterval(() => socket.writable && socket.write(text[i++ % text.length]!), 500);
  socket.once('close', () => clearInterval(timer));
  return socket;
}

test('SIGTERM ends a server with slow clients attached within 5 s', async (t) => {
  const server = await startServer({ dataDir: await dataDir(), httpsPort: await freePort(), commsPort: await freePort(), name: 'shutdown' });
  const clients: net.Socket[] = [];
  for (let i = 0; i < 5; i++) {
    const headers = await slowClient(server.httpsPort, 'abc', true);
    headers.write('GET / HTTP/1.1\r\nX-Slow: ');
    const body = await slowClient(server.httpsPort, 'abc', true);
    body.write('POST /login HTTP/1.1\r\nHost: reef\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 400\r\n\r\n');
    clients.push(headers, body, await slowClient(server.httpsPort, '\x16', false), await slowClient(server.commsPort, '\x16', false));
  }
  const exited = once(server.child, 'exit');
  const started = Date.now();
  server.child.kill('SIGTERM');
  const [code, signal] = (await Promise.race([exited, new Promise((r) => setTimeout(() => r(['still running', null]), 15_000))])) as [number | string | null, string | null];
  const ms = Date.now() - started;
  for (const socket of clients) socket.destroy();
  t.diagnostic(`exited ${ms} ms after SIGTERM with ${clients.length} slow clients attached`);
  assert.equal(code, 0, `exit code ${code}, signal ${signal}`);
  assert.ok(ms < 5000, `the server took ${ms} ms to exit`);
});

test('a taken HTTPS port ends "reef server run" with exit code 1 and a message naming the port', async () => {
  const holder = net.createServer((socket) => socket.destroy());
  holder.listen(0, '127.0.0.1');
  await once(holder, 'listening');
  const httpsPort = (holder.address() as net.AddressInfo).port;
  try {
    const started = Date.now();
    const result = await cli('reef', ['server', 'run', '--data', await dataDir(), '--https-port', String(httpsPort), '--comms-port', String(await freePort()), '--host', '127.0.0.1']);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`error: Cannot listen on the HTTPS port ${httpsPort} at 127\\.0\\.0\\.1: another program already uses it.*--https-port`));
    assert.doesNotMatch(result.stdout, /Reef server is running/);
    assert.ok(Date.now() - started < 30_000);
  } finally {
    await new Promise((r) => holder.close(r));
  }
});

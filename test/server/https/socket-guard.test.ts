/**
 * The portal and API's sockets, fed by the front door to an https.Server that never
 * listens: header and body deadlines, the per-address cap (also behind a PROXY protocol
 * proxy) and a shutdown that ends them all, on a real server and real sockets.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { WebSocket } from 'ws';
import { startReefServer, type RunningServer, type ServerSettings } from '../../../src/server/runtime.js';

const dataDirs: string[] = [];

async function start(settings: Partial<ServerSettings> = {}): Promise<RunningServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'reef-guard-'));
  dataDirs.push(dataDir);
  return startReefServer({ dataDir, httpsPort: 0, commsPort: 0, host: '127.0.0.1', ...settings });
}

after(async () => {
  await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A TLS client of the portal; `raw` lets a test write a PROXY header before the handshake. */
async function portalClient(port: number, raw?: net.Socket): Promise<tls.TLSSocket> {
  const socket = tls.connect({ ...(raw ? { socket: raw } : { port, host: '127.0.0.1' }), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
  socket.on('error', () => {});
  await once(socket, 'secureConnect');
  return socket;
}

async function rawClient(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

/** Writes one byte of `text` (cycled) every `everyMs` until the socket closes. */
function trickle(socket: net.Socket, text: string, everyMs = 100): void {
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || !socket.writable) return clearInterval(timer);
    socket.write(text[i++ % text.length]!);
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
}

/** Milliseconds until the socket closes; rejects if it is still open after `withinMs`. */
function closesWithin(socket: net.Socket, withinMs: number): Promise<number> {
  const started = Date.now();
  if (socket.closed) return Promise.resolve(0);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the socket was still open after ${withinMs} ms`)), withinMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

async function stillOpenAfter(socket: net.Socket, ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
  assert.equal(socket.closed, false, 'the socket was closed');
}

/** One HTTP/1.1 request on a fresh connection; resolves with the status line. */
async function statusOf(port: number, request: string): Promise<string> {
  const socket = await portalClient(port);
  socket.end(request);
  let text = '';
  for await (const chunk of socket) text += chunk;
  return text.split('\r\n')[0]!;
}

describe('portal and API deadlines', () => {
  let server: RunningServer;
  before(async () => {
    server = await start({ portalSocketLimits: { headersTimeoutMs: 600, anonymousBodyTimeoutMs: 600 } });
  });
  after(async () => {
    await server.close();
  });

  test('a client trickling its request headers is cut at headersTimeoutMs; others are served', async () => {
    const slow = await portalClient(server.httpsPort);
    slow.write('GET /api/ping HTTP/1.1\r\nHost: reef\r\nX-Slow: ');
    trickle(slow, 'abcdef');
    const ms = await closesWithin(slow, 5000);
    assert.ok(ms >= 300, `cut after ${ms} ms, before its deadline`);
    assert.equal(await statusOf(server.httpsPort, 'GET /api/ping HTTP/1.1\r\nHost: reef\r\nConnection: close\r\n\r\n'), 'HTTP/1.1 200 OK');
  });

  test('a client that completes TLS and sends nothing is cut at headersTimeoutMs', async () => {
    const silent = await portalClient(server.httpsPort);
    await closesWithin(silent, 5000);
  });

  test('after an answer, the next request on the connection has the same headers deadline', async () => {
    const client = await portalClient(server.httpsPort);
    client.write('GET /api/ping HTTP/1.1\r\nHost: reef\r\n\r\n');
    const [first] = (await once(client, 'data')) as [Buffer];
    assert.match(first.toString(), /^HTTP\/1\.1 200/);
    client.write('GET /api/ping HTTP/1.1\r\nHost: reef\r\nX-Slow: ');
    trickle(client, 'abcdef');
    await closesWithin(client, 5000);
  });

  test('a sign-in body sent slowly is cut at anonymousBodyTimeoutMs, even with a (forged) session cookie', async () => {
    const slow = await portalClient(server.httpsPort);
    slow.write('POST /login HTTP/1.1\r\nHost: reef\r\nCookie: reef_session=forged\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 400\r\n\r\nusername=');
    trickle(slow, 'admin');
    const ms = await closesWithin(slow, 5000);
    assert.ok(ms >= 300, `cut after ${ms} ms, before its deadline`);
  });

  test('a request with an API key may send its body more slowly than an anonymous one', async () => {
    const client = await portalClient(server.httpsPort);
    const body = JSON.stringify({ name: 'slow but signed' });
    client.write(`POST /api/apikeys HTTP/1.1\r\nHost: reef\r\nX-Reef-ApiKey: ${server.initialAdminKey}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    // About 1.3 s for the body: twice the anonymous deadline.
    for (const char of body) {
      client.write(char);
      await new Promise((r) => setTimeout(r, 1300 / body.length));
    }
    let text = '';
    for await (const chunk of client) text += chunk;
    assert.match(text, /^HTTP\/1\.1 201/);
  });
});

describe('connections per source address', () => {
  test('past maxConnectionsPerAddress a source is closed at accept; a freed place is usable again', async () => {
    const server = await start({ frontDoorLimits: { maxConnectionsPerAddress: 3 } });
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) held.push(await rawClient(server.httpsPort));
      const refused = await rawClient(server.httpsPort);
      await closesWithin(refused, 2000);
      for (const socket of held) assert.equal(socket.closed, false);
      held.shift()!.destroy();
      await new Promise((r) => setTimeout(r, 200));
      const next = await rawClient(server.httpsPort);
      held.push(next);
      await stillOpenAfter(next, 300);
    } finally {
      for (const socket of held) socket.destroy();
      await server.close();
    }
  });

  test('a WebSocket upgraded for a Tentacle leaves the count: many Tentacles may share one proxy address', async () => {
    const server = await start({ frontDoorLimits: { maxConnectionsPerAddress: 2 } });
    const sockets: WebSocket[] = [];
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const ws = new WebSocket(`wss://127.0.0.1:${server.httpsPort}/reef/comms`, { rejectUnauthorized: false });
        ws.on('error', () => {});
        sockets.push(ws);
        await once(ws, 'open');
      }
      // The upgraded ones are not counted: two plain portal clients still fit.
      for (let i = 0; i < 2; i++) held.push(await rawClient(server.httpsPort));
      for (const socket of held) await stillOpenAfter(socket, 100);
      const refused = await rawClient(server.httpsPort);
      await closesWithin(refused, 2000);
    } finally {
      for (const ws of sockets) ws.terminate();
      for (const socket of held) socket.destroy();
      await server.close();
    }
  });

  test('behind a PROXY protocol proxy, the announced source address is what counts', async () => {
    const server = await start({ proxyProtocol: true, frontDoorLimits: { maxConnectionsPerAddress: 2 } });
    const held: net.Socket[] = [];
    const from = async (address: string) => {
      const raw = await rawClient(server.httpsPort);
      raw.write(`PROXY TCP4 ${address} 127.0.0.1 40000 443\r\n`);
      held.push(raw);
      return raw;
    };
    try {
      held.push(await portalClient(server.httpsPort, await from('203.0.113.7')));
      held.push(await portalClient(server.httpsPort, await from('203.0.113.7')));
      // A third from the same client is closed before its TLS handshake completes...
      await assert.rejects(portalClient(server.httpsPort, await from('203.0.113.7')));
      // ...while another client behind the same proxy is served.
      const other = await portalClient(server.httpsPort, await from('203.0.113.8'));
      held.push(other);
      await stillOpenAfter(other, 200);
    } finally {
      for (const socket of held) socket.destroy();
      await server.close();
    }
  });
});

test('close() ends slow portal, front door and comms clients within 5 s', async () => {
  const server = await start(); // default deadlines: 10 s, longer than the close may take
  const clients: net.Socket[] = [];
  for (let i = 0; i < 5; i++) {
    const slowHeaders = await portalClient(server.httpsPort);
    slowHeaders.write('GET / HTTP/1.1\r\nX-Slow: ');
    trickle(slowHeaders, 'abc', 200);
    const slowBody = await portalClient(server.httpsPort);
    slowBody.write('POST /login HTTP/1.1\r\nHost: reef\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 400\r\n\r\n');
    trickle(slowBody, 'abc', 200);
    clients.push(slowHeaders, slowBody, await rawClient(server.httpsPort), await rawClient(server.commsPort));
  }
  const started = Date.now();
  await server.close();
  const ms = Date.now() - started;
  assert.ok(ms < 5000, `close() took ${ms} ms`);
  await Promise.all(clients.map((socket) => closesWithin(socket, 2000)));
});

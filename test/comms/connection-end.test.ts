/**
 * A link that can no longer carry a single byte must still end. Node keeps a destroyed
 * HTTP/2 session open, with no 'close' and no 'error', for as long as a write is pending;
 * on a half-open link with full buffers, or a socket reset mid-write, that is for ever
 * (src/comms/rpc/connection-end.ts). Here the socket is a stream whose writes stop
 * completing after the handshake; the heartbeat must still end both sides' connections.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { resolveLimits } from '../../src/comms/limits.js';
import { RpcClient } from '../../src/comms/rpc/client.js';
import { ServiceHost } from '../../src/comms/rpc/host.js';
import { silentLogger } from '../../src/logging.js';

const limits = resolveLimits({ heartbeatIntervalMs: 50, heartbeatTimeoutMs: 300 });
const peer = { thumbprint: 'A'.repeat(64), remoteAddress: '192.0.2.1:10943', carrier: 'tcp' };

/**
 * A socket with no peer: writes complete until `jam()`, then never again. `vanishing`: its
 * destroy never completes either, so it never emits 'close' (a handle gone under Node's feet).
 */
function jammableSocket({ vanishing = false } = {}): { socket: Duplex; jam(): void } {
  let jammed = false;
  const socket = new Duplex({
    read() {},
    write(_chunk, _encoding, done) {
      if (!jammed) done();
    },
    destroy(err, done) {
      if (!vanishing) done(err);
    },
  });
  return { socket, jam: () => (jammed = true) };
}

async function endsWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const timeout = sleep(ms).then(() => {
    throw new Error(`${what} did not end within ${ms} ms`);
  });
  return Promise.race([promise, timeout]);
}

test('the Tentacle side ends a connection whose writes never complete, when its heartbeat gives up', async () => {
  const { socket, jam } = jammableSocket();
  const host = new ServiceHost(new Map(), limits, silentLogger);
  const served = host.serve(socket, peer);
  await sleep(20); // the server preface and SETTINGS go out
  jam();
  const reason = await endsWithin(served.closed, 5000, 'the served connection');
  assert.equal((reason as { code?: string } | undefined)?.code, 'REEF_HEARTBEAT_TIMEOUT');
  assert.ok(socket.destroyed, 'the socket is destroyed with the session');
});

test('the server side ends a connection whose writes never complete, when its heartbeat gives up', async () => {
  const { socket, jam } = jammableSocket();
  const client = new RpcClient(socket, peer, limits, silentLogger);
  await sleep(20);
  jam();
  const reason = await endsWithin(client.closed, 5000, 'the client connection');
  assert.equal((reason as { code?: string } | undefined)?.code, 'REEF_HEARTBEAT_TIMEOUT');
  assert.equal(client.isOpen, false);
  assert.ok(socket.destroyed);
});

test('ending a connection by hand with a write pending resolves at once', async () => {
  const { socket, jam } = jammableSocket();
  const host = new ServiceHost(new Map(), resolveLimits({ heartbeatIntervalMs: 0 }), silentLogger);
  const served = host.serve(socket, peer);
  await sleep(20);
  jam();
  served.close();
  await endsWithin(served.closed, 1000, 'the closed connection');
});

test('a connection whose socket never reports its close still ends, within a second of being ended', async () => {
  const { socket, jam } = jammableSocket({ vanishing: true });
  const host = new ServiceHost(new Map(), resolveLimits({ heartbeatIntervalMs: 0 }), silentLogger);
  const served = host.serve(socket, peer);
  await sleep(20);
  jam();
  served.close();
  await endsWithin(served.closed, 3000, 'the connection over a vanishing socket');
});

test('a session destroyed behind the connection\'s back is noticed by the heartbeat, and the connection ends', async () => {
  const { socket, jam } = jammableSocket({ vanishing: true });
  const client = new RpcClient(socket, peer, resolveLimits({ heartbeatIntervalMs: 50, heartbeatTimeoutMs: 60_000 }), silentLogger);
  await sleep(20);
  jam();
  // As Node does on a socket error: the session is destroyed, its write never completes, no event follows.
  (client as unknown as { session: { destroy(): void } }).session.destroy();
  await endsWithin(client.closed, 5000, 'the connection whose session was destroyed');
});

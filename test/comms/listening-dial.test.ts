/**
 * The server dialling a listening Tentacle on loopback, when it cannot: nothing listens
 * (refused, dialled again up to the pickup timeout), TCP connects but TLS fails (garbage, a
 * reset, silence), and pinning refuses either way. Each error names the address dialled and
 * says which of these it was. (A firewall that drops, or rejects, is on a real network in
 * test/e2e/listening-firewall.slow.test.ts.)
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { TentacleComms, type CommsServer } from '../../src/comms/index.js';
import { isReefError, type ErrorCode } from '../../src/errors.js';
import { freePort } from '../support/tinyproxy.js';
import { echo, services, startServer, testIdentities } from './harness.js';

/** A TCP server on 127.0.0.1 that does `onConnection` with each socket instead of speaking TLS. */
async function rawServer(onConnection: (socket: net.Socket) => void) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

async function server(limits: Parameters<typeof startServer>[1]): Promise<CommsServer> {
  const ids = await testIdentities();
  const { server } = await startServer(new Set([ids.tentacle.thumbprint]), limits);
  closers.push(() => server.close());
  return server;
}

async function listeningTentacle(options: { trusts?: string[]; identity?: 'tentacle' | 'stranger'; port?: number } = {}) {
  const ids = await testIdentities();
  const comms = new TentacleComms({ identity: ids[options.identity ?? 'tentacle'], services: services({ echo }) });
  const trusted = options.trusts ?? [ids.server.thumbprint];
  const port = await comms.listen(options.port ?? 0, '127.0.0.1', (tp) => trusted.includes(tp), () => trusted);
  closers.push(() => comms.close());
  return port;
}

/** Calls the Tentacle at 127.0.0.1:port; resolves with the error (and how long it took), or fails the test if the call succeeds. */
async function failedCall(comms: CommsServer, port: number, options: { signal?: AbortSignal; notes?: string[] } = {}) {
  const ids = await testIdentities();
  const started = Date.now();
  try {
    await comms.call({ thumbprint: ids.tentacle.thumbprint, name: 'web-01', listening: { host: '127.0.0.1', port } }, 'echo', 1, {
      signal: options.signal,
      onWaiting: (note) => options.notes?.push(note),
    });
  } catch (err) {
    if (!isReefError(err)) throw err;
    return { err, ms: Date.now() - started };
  }
  assert.fail('the call succeeded');
}

function expectCode(err: { code: ErrorCode; message: string }, code: ErrorCode) {
  assert.equal(err.code, code, err.message);
}

describe('nothing listens (connection refused)', () => {
  test('dialled again with backoff until the pickup timeout, then REEF_LISTENING_REFUSED naming the address and polling', async () => {
    const comms = await server({ pickupTimeoutMs: 2000 });
    const port = await freePort();
    const notes: string[] = [];
    const { err, ms } = await failedCall(comms, port, { notes });
    expectCode(err, 'REEF_LISTENING_REFUSED');
    assert.ok(ms >= 1900 && ms < 4000, `gave up after ${ms} ms, expected about the 2 s pickup timeout`);
    assert.match(err.message, new RegExp(`Tentacle "web-01" \\([0-9A-F]{64}\\) at 127\\.0\\.0\\.1:${port} within the pickup timeout \\(2 s; \\d+ attempts over 2 s\\)`));
    const attempts = Number(/(\d+) attempts/.exec(err.message)![1]);
    assert.ok(attempts >= 2, `dialled ${attempts} times`);
    assert.match(err.message, /every connection was refused \(ECONNREFUSED, a TCP reset\): nothing listens on that port, or a firewall rejects/);
    assert.match(err.message, new RegExp(`listens on port ${port}`));
    assert.match(err.message, /tentacle register-with --server .* --comms-style TentacleActive/);
    assert.match(err.message, /--server-comms-address https:\/\/.* or --server-web-socket wss:\/\//);
    // The task log learns at once why the call waits, and only once.
    assert.equal(notes.length, 1);
    assert.match(notes[0]!, new RegExp(`Could not connect to Tentacle "web-01" .* at 127\\.0\\.0\\.1:${port}: the connection was refused \\(ECONNREFUSED\\)\\. Trying again until .*Z, for up to the pickup timeout \\(2 s\\)\\.$`));
  });

  test('a name resolved to another address names both', async () => {
    const comms = await server({ pickupTimeoutMs: 300 });
    const port = await freePort();
    const ids = await testIdentities();
    await assert.rejects(comms.call({ thumbprint: ids.tentacle.thumbprint, listening: { host: 'localhost', port } }, 'echo', 1), (err: Error & { code: string }) => {
      assert.equal(err.code, 'REEF_LISTENING_REFUSED');
      assert.match(err.message, new RegExp(`at localhost:${port} \\(at address (127\\.0\\.0\\.1|::1)`));
      return true;
    });
  });

  test('a Tentacle that starts listening within the pickup timeout is reached', async () => {
    const comms = await server({ pickupTimeoutMs: 20_000 });
    const ids = await testIdentities();
    const port = await freePort();
    const notes: string[] = [];
    const call = comms.call({ thumbprint: ids.tentacle.thumbprint, listening: { host: '127.0.0.1', port } }, 'echo', 'late', { onWaiting: (note) => notes.push(note) });
    await new Promise((resolve) => setTimeout(resolve, 800));
    await listeningTentacle({ port });
    assert.equal(await call, 'late');
    assert.equal(notes.length, 1, 'the wait was noted');
  });

  test('a name that does not resolve is REEF_LISTENING_UNREACHABLE, saying so', async () => {
    const comms = await server({ pickupTimeoutMs: 300 });
    const ids = await testIdentities();
    await assert.rejects(comms.call({ thumbprint: ids.tentacle.thumbprint, listening: { host: 'tentacle.reef.invalid', port: 10933 } }, 'echo', 1), (err: Error & { code: string }) => {
      assert.equal(err.code, 'REEF_LISTENING_UNREACHABLE');
      assert.match(err.message, /at tentacle\.reef\.invalid:10933 .*its host name did not resolve \((ENOTFOUND|EAI_AGAIN)\)/);
      assert.match(err.message, /--publicHostName/);
      return true;
    });
  });

  test('cancelling the call ends the dialling at once (REEF_CALL_CANCELLED), and so does closing the server (REEF_SHUTTING_DOWN)', async () => {
    const comms = await server({ pickupTimeoutMs: 60_000 });
    const port = await freePort();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const cancelled = await failedCall(comms, port, { signal: controller.signal });
    expectCode(cancelled.err, 'REEF_CALL_CANCELLED');
    assert.ok(cancelled.ms < 2000, `cancelled after ${cancelled.ms} ms`);
    assert.match(cancelled.err.message, /cancelled while dialling it/);

    const ids = await testIdentities();
    const { server: closing } = await startServer(new Set([ids.tentacle.thumbprint]), { pickupTimeoutMs: 60_000 });
    setTimeout(() => void closing.close(), 300);
    const stopped = await failedCall(closing, port);
    expectCode(stopped.err, 'REEF_SHUTTING_DOWN');
    assert.ok(stopped.ms < 2000, `stopped after ${stopped.ms} ms`);
  });
});

describe('TCP connects, TLS fails: REEF_LISTENING_TLS_FAILED at once', () => {
  const cases: [string, (socket: net.Socket) => void, RegExp][] = [
    ['the peer answers with something else than TLS', (socket) => socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'), /the TLS handshake failed: .*(wrong version number|packet length too long|closed the connection)/],
    ['the peer resets the connection', (socket) => socket.resetAndDestroy(), /the connection was reset \(ECONNRESET\) before the TLS handshake could start|the TLS handshake failed: .*(ECONNRESET|socket disconnected|closed the connection)/],
    ['the peer stays silent past the handshake timeout', () => {}, /the TLS handshake failed: The TLS handshake with 127\.0\.0\.1:\d+ did not complete within 500 ms/],
  ];
  for (const [name, behave, detail] of cases) {
    test(name, async () => {
      const peer = await rawServer(behave);
      closers.push(peer.close);
      const comms = await server({ pickupTimeoutMs: 20_000, handshakeTimeoutMs: 500 });
      const { err, ms } = await failedCall(comms, peer.port);
      expectCode(err, 'REEF_LISTENING_TLS_FAILED');
      assert.ok(ms < 5000, `failed after ${ms} ms: not dialled again until the pickup timeout`);
      assert.match(err.message, new RegExp(`Tentacle "web-01" .* at 127\\.0\\.0\\.1:${peer.port}: TCP connected, but `));
      assert.match(err.message, detail);
      assert.match(err.message, /Something other than a Reef Tentacle may listen on that port/);
      assert.doesNotMatch(err.message, /TentacleActive/, 'inbound connections get through: polling is not the answer');
    });
  }

  test('a pickup timeout shorter than the handshake: TLS did not complete within it', async () => {
    const peer = await rawServer(() => {});
    closers.push(peer.close);
    const comms = await server({ pickupTimeoutMs: 600, handshakeTimeoutMs: 10_000 });
    const { err, ms } = await failedCall(comms, peer.port);
    expectCode(err, 'REEF_LISTENING_TLS_FAILED');
    assert.ok(ms < 2000, `failed after ${ms} ms`);
    assert.match(err.message, /TCP connected, but the TLS handshake did not complete within the pickup timeout \(1 s\)/);
  });
});

describe('pinning refuses: REEF_UNTRUSTED_CERTIFICATE at once, either way', () => {
  test('the Tentacle presents another certificate than the one registered', async () => {
    const port = await listeningTentacle({ identity: 'stranger' });
    const ids = await testIdentities();
    const comms = await server({ pickupTimeoutMs: 20_000 });
    const { err, ms } = await failedCall(comms, port);
    expectCode(err, 'REEF_UNTRUSTED_CERTIFICATE');
    assert.ok(ms < 5000, `failed after ${ms} ms`);
    assert.match(err.message, new RegExp(`at 127\\.0\\.0\\.1:${port}: TCP and TLS connected, but pinning refused the connection\\.`));
    assert.match(err.message, new RegExp(`presented certificate thumbprint ${ids.stranger.thumbprint}, but Tentacle "web-01" \\(${ids.tentacle.thumbprint}\\) is registered with ${ids.tentacle.thumbprint}`));
    // Interception first, re-registering only after.
    assert.ok(err.message.indexOf('intercepting') < err.message.indexOf('register-with --force'), err.message);
  });

  test('the Tentacle does not trust this server', async () => {
    const ids = await testIdentities();
    const port = await listeningTentacle({ trusts: [ids.stranger.thumbprint] });
    const comms = await server({ pickupTimeoutMs: 20_000 });
    const { err, ms } = await failedCall(comms, port);
    expectCode(err, 'REEF_UNTRUSTED_CERTIFICATE');
    assert.ok(ms < 5000, `failed after ${ms} ms`);
    assert.match(err.message, new RegExp(`at 127\\.0\\.0\\.1:${port}: TCP and TLS connected, but pinning refused the connection\\. This Tentacle does not trust the server certificate with thumbprint ${ids.server.thumbprint}`));
  });
});

import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { after, describe, test } from 'node:test';
import { BUSY_MAX_WAIT_MS, busyRetryDelay, parseRetryAfter, ServerBusyError } from '../../src/comms/busy.js';
import { connectTcp } from '../../src/comms/carriers/tcp.js';
import { connectWebSocket, createWebSocketEndpoint } from '../../src/comms/carriers/websocket.js';
import { createFrontDoor } from '../../src/comms/front-door/front-door.js';
import type { CommsServer, Poller } from '../../src/comms/index.js';
import { silentLogger } from '../../src/logging.js';
import { connected, echo, startPollingTentacle, startServer, testIdentities } from './harness.js';

type Failure = { err: Error; retryInMs: number };

/** The next `failed` event of the poller, or an assertion error after `ms` (no refusal came). */
async function nextFailure(poller: Poller, ms = 8000): Promise<Failure> {
  const failed = once(poller, 'failed').then(([err, retryInMs]) => ({ err: err as Error, retryInMs: retryInMs as number }));
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no failed attempt within ${ms} ms`)), ms).unref());
  return Promise.race([failed, timer]);
}

/** Holds `n` handshakes in flight on the comms port: TCP connections that never send a ClientHello. */
async function holdHandshakes(server: CommsServer, port: number, n: number): Promise<net.Socket[]> {
  const sockets = await Promise.all(Array.from({ length: n }, () => connectTcp('127.0.0.1', port, { timeoutMs: 5000 })));
  for (const socket of sockets) socket.on('error', () => {});
  while (server.admission.handshakesInFlight < n) await new Promise((resolve) => setTimeout(resolve, 10));
  return sockets;
}

async function settlesToZero(server: CommsServer): Promise<void> {
  const deadline = Date.now() + 5000;
  while (server.admission.handshakesInFlight !== 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(server.admission.handshakesInFlight, 0, 'every handshake counted in flight was counted out');
}

function refusalsOf(server: CommsServer): string[] {
  const seen: string[] = [];
  server.on('refused', (carrier, reason) => seen.push(`${carrier}:${reason}`));
  return seen;
}

describe('admission control: a saturated server refuses new connections before TLS with a retry hint', () => {
  const closers: Array<() => unknown> = [];
  after(async () => {
    for (const close of closers.reverse()) await close();
  });

  test('the busy wait is the hint bounded to 30 s and jittered; no hint means the default; Retry-After is whole seconds', () => {
    assert.equal(busyRetryDelay(3_600_000, () => 0.999), BUSY_MAX_WAIT_MS);
    for (const hint of [3_600_000, Number.MAX_SAFE_INTEGER, Infinity]) {
      for (const r of [0, 0.5, 0.999]) assert.ok(busyRetryDelay(hint, () => r) <= BUSY_MAX_WAIT_MS, `hint ${hint}, random ${r}`);
    }
    assert.equal(busyRetryDelay(4000, () => 0), 2000);
    assert.equal(busyRetryDelay(4000, () => 0.5), 4000);
    assert.equal(busyRetryDelay(undefined, () => 0.5), 1000, 'no hint: the 1 s default');
    assert.ok(busyRetryDelay(0, () => 0) >= 125, 'a hint of 0 cannot make a tight loop');
    assert.ok(busyRetryDelay(-5, () => 0) >= 125);
    assert.equal(parseRetryAfter('7'), 7000);
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT'), undefined);
    assert.equal(parseRetryAfter('-1'), undefined);
    assert.equal(parseRetryAfter(undefined), undefined);
  });

  test('on the comms port: refused while the bound is reached, the Tentacle waits the hint without backing off, then gets in', async () => {
    const ids = await testIdentities();
    const { server, port } = await startServer(new Set([ids.tentacle.thumbprint]), { maxHandshakesInFlight: 2 });
    closers.push(() => server.close());
    const refusals = refusalsOf(server);
    const silent = await holdHandshakes(server, port, 2);

    const { comms, poller } = await startPollingTentacle(port, { echo });
    closers.push(() => comms.close());
    const failures = [await nextFailure(poller), await nextFailure(poller), await nextFailure(poller)];
    for (const { err, retryInMs } of failures) {
      assert.ok(err instanceof ServerBusyError, `refused as busy, not ${(err as { code?: string }).code}: ${err.message}`);
      assert.equal(err.code, 'REEF_SERVER_BUSY');
      // The default hint (1 s) jittered to [0.5 s, 1.5 s): the same window on every refusal,
      // where the exponential backoff starts at [0, 1 s) and doubles.
      assert.ok(retryInMs >= 500 && retryInMs < 1500, `waits within the hint's window, got ${retryInMs} ms`);
    }
    assert.ok(refusals.filter((r) => r === 'tcp:server_busy').length >= 2, `counted as server_busy: ${refusals.join(', ')}`);
    assert.equal(server.admission.handshakesInFlight, 2, 'a refused connection never counts as in flight');

    for (const socket of silent) socket.destroy();
    await connected(server, ids.tentacle.thumbprint);
    await settlesToZero(server);
  });

  test('busy refusals leave the backoff where it was: the next ordinary failure still waits under 1 s', async () => {
    const ids = await testIdentities();
    const { server, port } = await startServer(new Set([ids.tentacle.thumbprint]), { maxHandshakesInFlight: 1 });
    await holdHandshakes(server, port, 1);
    const { comms, poller } = await startPollingTentacle(port, { echo });
    closers.push(() => comms.close());
    for (let i = 0; i < 3; i++) assert.equal((await nextFailure(poller)).err.constructor, ServerBusyError);
    // Nothing listens any more: a refused connection, never linked before, so the exponential
    // backoff applies. Had the three busy refusals counted, it would wait up to 8 s.
    await server.close();
    const ordinary = await nextFailure(poller);
    assert.ok(!(ordinary.err instanceof ServerBusyError), ordinary.err.message);
    assert.ok(ordinary.retryInMs < 1000, `the first backoff step, got ${ordinary.retryInMs} ms`);
  });

  test('through the front door (SNI) as on the comms port: the same bound and the same refusal', async () => {
    const ids = await testIdentities();
    const { server, port } = await startServer(new Set([ids.tentacle.thumbprint]), { maxHandshakesInFlight: 1 });
    closers.push(() => server.close());
    const door = createFrontDoor({
      pollingHostnames: ['polling.reef.test'],
      logger: silentLogger,
      toComms: (socket, carrier) => server.accept(socket, carrier),
      toPortal: (socket) => socket.destroy(),
    });
    const doorPort = await door.listen(0, '127.0.0.1');
    closers.push(() => door.close());
    const refusals = refusalsOf(server);
    const silent = await holdHandshakes(server, port, 1);

    const { comms, poller } = await startPollingTentacle(doorPort, { echo }, {
      target: {
        host: 'polling.reef.test',
        servername: 'polling.reef.test',
        carrier: 'sni',
        transport: () => connectTcp('polling.reef.test', doorPort, { resolveTo: '127.0.0.1', timeoutMs: 5000 }),
      },
    });
    closers.push(() => comms.close());
    const { err, retryInMs } = await nextFailure(poller);
    assert.equal((err as ServerBusyError).code, 'REEF_SERVER_BUSY', err.message);
    assert.ok(retryInMs >= 500 && retryInMs < 1500, `got ${retryInMs} ms`);
    assert.ok(refusals.includes('sni:server_busy'), refusals.join(', '));

    for (const socket of silent) socket.destroy();
    await connected(server, ids.tentacle.thumbprint);
    await settlesToZero(server);
  });

  test('over a WebSocket: 503 with Retry-After before the upgrade; the hint is honoured, a hint above 30 s clamped', async () => {
    const ids = await testIdentities();
    const { server } = await startServer(new Set([ids.tentacle.thumbprint]));
    closers.push(() => server.close());
    let hintMs: number | undefined = 3_600_000;
    const endpoint = createWebSocketEndpoint({
      path: '/reef/comms',
      onStream: (stream: Duplex) => server.accept(stream, 'websocket'),
      friendlyPage: (_req, res) => res.end(),
      busy: () => hintMs,
    });
    const web = http.createServer((_req, res) => res.writeHead(404).end());
    web.on('upgrade', (req, socket: Duplex, head: Buffer) => {
      if (!endpoint.handleUpgrade(req, socket, head)) socket.destroy();
    });
    web.listen(0, '127.0.0.1');
    await once(web, 'listening');
    closers.push(() => {
      endpoint.close();
      web.closeAllConnections();
      web.close();
    });
    const url = `ws://127.0.0.1:${(web.address() as net.AddressInfo).port}/reef/comms`;
    const target = { carrier: 'websocket', transport: () => connectWebSocket(url, { timeoutMs: 5000 }) };

    const first = await startPollingTentacle(0, { echo }, { target });
    const clamped = await nextFailure(first.poller);
    await first.comms.close();
    assert.equal((clamped.err as ServerBusyError).code, 'REEF_SERVER_BUSY', clamped.err.message);
    assert.equal((clamped.err as ServerBusyError).retryAfterMs, 3_600_000, 'the hint as the server sent it');
    assert.ok(clamped.retryInMs >= 15_000 && clamped.retryInMs <= BUSY_MAX_WAIT_MS, `an hour is clamped to at most 30 s, got ${clamped.retryInMs} ms`);

    hintMs = 1000;
    const second = await startPollingTentacle(0, { echo }, { target });
    closers.push(() => second.comms.close());
    const honoured = await nextFailure(second.poller);
    assert.ok(honoured.retryInMs >= 500 && honoured.retryInMs < 1500, `a 1 s hint: waits 0.5-1.5 s, got ${honoured.retryInMs} ms`);
    hintMs = undefined;
    const started = Date.now();
    await connected(server, ids.tentacle.thumbprint);
    assert.ok(Date.now() - started < 5000, 'back in after the hint');
  });
});

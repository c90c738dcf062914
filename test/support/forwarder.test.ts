import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';

import { startForwarder, type Forwarder } from './forwarder.js';
import {
  closed,
  connectTcp,
  readBytes,
  readUntilClose,
  startEchoServer,
  type EchoServer,
} from './net.js';

/** How long "nothing happens" is watched for. Long enough to see a leak, short for CI. */
const QUIET_MS = 300;

/** Resolves to what the socket did during `ms`: bytes received and whether it closed. */
async function watch(socket: net.Socket, ms: number): Promise<{ bytes: number; closed: boolean }> {
  let bytes = 0;
  let sawClose = false;
  const onData = (chunk: Buffer): void => {
    bytes += chunk.length;
  };
  const onClose = (): void => {
    sawClose = true;
  };
  socket.on('data', onData);
  socket.once('close', onClose);
  await sleep(ms);
  socket.off('data', onData);
  socket.off('close', onClose);
  return { bytes, closed: sawClose };
}

async function roundTrip(socket: net.Socket, text: string): Promise<string> {
  const reply = readBytes(socket, Buffer.byteLength(text));
  socket.write(text);
  return (await reply).toString();
}

describe('forwarder', () => {
  let echo: EchoServer;
  let fwd: Forwarder;
  let clients: net.Socket[] = [];

  async function client(): Promise<net.Socket> {
    const socket = await connectTcp(fwd.port);
    clients.push(socket);
    return socket;
  }

  // A fresh echo server and forwarder per test, so no fault setting leaks into the next,
  // and every handle closed before the next test starts.
  beforeEach(async () => {
    echo = await startEchoServer();
    fwd = await startForwarder({ targetPort: echo.port });
  });

  afterEach(async () => {
    for (const socket of clients) socket.destroy();
    await Promise.all(clients.map(closed));
    clients = [];
    await fwd.close();
    await echo.close();
  });

  it('forwards bytes both ways, large payloads included, and reports the pair', async () => {
    const linked = once(fwd, 'connection');
    const socket = await client();
    const [info] = await linked;
    assert.equal(info.clientPort, socket.localPort);
    assert.equal(fwd.connections, 1);
    assert.equal(await roundTrip(socket, 'hello'), 'hello');

    // Several MiB exercises backpressure on both legs.
    const payload = randomBytes(8 * 1024 * 1024);
    const echoed = readBytes(socket, payload.length);
    socket.write(payload);
    assert.ok((await echoed).equals(payload));
  });

  it('forwards a half-close and drops the pair when both sides are done', async () => {
    const socket = await client();
    const rest = readUntilClose(socket);
    const gone = once(fwd, 'disconnect');
    socket.end('bye');
    assert.equal((await rest).toString(), 'bye');
    await gone;
    assert.equal(fwd.connections, 0);
  });

  it('delays each chunk by at least the delay, in order, both ways', async () => {
    const socket = await client();
    fwd.setDelay(100);
    const start = performance.now();
    assert.equal(await roundTrip(socket, 'ping'), 'ping');
    assert.ok(performance.now() - start >= 200, 'one delay upstream and one downstream');

    // Shrinking the delay must not let a later chunk overtake an earlier one.
    const reply = readBytes(socket, 2);
    socket.write('a');
    await sleep(10);
    fwd.setDelay(0);
    socket.write('b');
    assert.equal((await reply).toString(), 'ab');
  });

  it("pause() blackholes data, keeps the link open, and resume() forwards only new data", async () => {
    const socket = await client();
    assert.equal(await roundTrip(socket, 'before'), 'before');
    fwd.pause();
    socket.write('lost');
    assert.deepEqual(await watch(socket, QUIET_MS), { bytes: 0, closed: false });
    assert.equal(fwd.connections, 1);

    fwd.resume();
    assert.equal(await roundTrip(socket, 'after'), 'after');
  });

  it("pause('hold') stalls data and resume() delivers it intact", async () => {
    const socket = await client();
    fwd.pause('hold');
    const reply = readBytes(socket, 4);
    socket.write('held');
    assert.deepEqual(await watch(socket, QUIET_MS), { bytes: 0, closed: false });
    fwd.resume();
    assert.equal((await reply).toString(), 'held');
  });

  it('cutAfter(n) delivers at most n bytes downstream, then resets both sides', async () => {
    const socket = await client();
    assert.equal(await roundTrip(socket, 'warm'), 'warm');
    fwd.cutAfter(10, 'downstream');
    const received = readUntilClose(socket);
    socket.write(Buffer.alloc(100, 1));
    // At most 10 by contract; exactly 10 here, since this reader keeps its buffer empty.
    assert.deepEqual(await received, Buffer.alloc(10, 1));
    assert.equal(fwd.connections, 0);
  });

  it('cutAfter(n) upstream applies to new connections until cleared with Infinity', async () => {
    fwd.cutAfter(1000, 'upstream');
    const socket = await client();
    const received = readUntilClose(socket);
    socket.write(Buffer.alloc(600, 1));
    await sleep(50);
    socket.write(Buffer.alloc(600, 2));
    const bytes = await received;
    assert.ok(bytes.length <= 1000, `got ${bytes.length} bytes`);

    fwd.cutAfter(Infinity);
    const next = await client();
    const big = Buffer.alloc(5000, 3);
    const echoed = readBytes(next, big.length);
    next.write(big);
    assert.ok((await echoed).equals(big));
  });

  it('killAll() closes every live connection; new ones still work', async () => {
    const a = await client();
    const b = await client();
    assert.equal(await roundTrip(a, 'a'), 'a');
    assert.equal(await roundTrip(b, 'b'), 'b');
    assert.equal(fwd.connections, 2);
    const both = Promise.all([closed(a), closed(b)]);
    fwd.killAll();
    assert.equal(fwd.connections, 0);
    await both;

    assert.equal(await roundTrip(await client(), 'again'), 'again');
  });

  it('refuse(true) accepts and resets new connections without reaching the target', async () => {
    const reachedBefore = echo.accepted;
    fwd.refuse(true);
    // The reset may beat the client's own view of the handshake, so connect may fail too.
    const socket = net.connect({ port: fwd.port, host: '127.0.0.1' });
    socket.on('error', () => {});
    clients.push(socket);
    assert.equal((await readUntilClose(socket)).length, 0);
    assert.equal(fwd.accepted, 1);
    assert.equal(fwd.connections, 0);
    assert.equal(echo.accepted, reachedBefore);

    fwd.refuse(false);
    assert.equal(await roundTrip(await client(), 'ok'), 'ok');
  });

  it('setTarget() sends new connections to the new target and leaves live ones alone', async () => {
    const old = await client();
    assert.equal(await roundTrip(old, 'old'), 'old');

    const other = await startEchoServer();
    try {
      fwd.setTarget(other.port);
      const moved = await client();
      assert.equal(await roundTrip(moved, 'new'), 'new');
      assert.equal(other.accepted, 1);
      assert.equal(await roundTrip(old, 'still'), 'still');
    } finally {
      await other.close();
    }
  });

  it('a target that refuses makes the client see a reset', async () => {
    const down = await startEchoServer();
    const deadPort = down.port;
    await down.close();
    fwd.setTarget(deadPort);
    const socket = await client();
    assert.equal((await readUntilClose(socket)).length, 0);
    assert.equal(fwd.connections, 0);
    assert.throws(() => fwd.setTarget(80, '10.0.0.1'), /not loopback/);
  });
});

describe('forwarder close()', () => {
  it('leaves no socket, server or timer behind', async () => {
    const handles = (): string[] =>
      process
        .getActiveResourcesInfo()
        .filter((kind) => kind.startsWith('TCP') || kind === 'Timeout')
        .sort();
    const baseline = handles();

    const echo = await startEchoServer();
    const fwd = await startForwarder({ targetPort: echo.port });
    const socket = await connectTcp(fwd.port);
    assert.equal(await roundTrip(socket, 'x'), 'x');
    fwd.setDelay(10_000);
    socket.write('queued behind a long delay');
    await sleep(50);
    const clientClosed = closed(socket);
    await fwd.close();
    await clientClosed;
    await echo.close();
    assert.deepEqual(handles(), baseline);
  });
});

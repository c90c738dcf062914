import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { StreamingResult, TentacleComms, CommsServer, type Handler } from '../../src/comms/index.js';
import { ReefError } from '../../src/errors.js';
import { connected, echo, services, startPollingTentacle, startServer, testIdentities } from './harness.js';

/** Hashes a body as it streams, so a 100 MiB transfer never sits in memory. */
async function sha256Of(body: Readable): Promise<{ hash: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  await pipeline(body, new Writable({ write(chunk: Buffer, _enc, done) { hash.update(chunk); bytes += chunk.length; done(); } }));
  return { hash: hash.digest('hex'), bytes };
}

/** A deterministic stream of `total` bytes, and its hash computed the same way. */
function patternStream(total: number): { stream: Readable; hash: string } {
  const block = randomBytes(1024 * 1024);
  const hash = createHash('sha256');
  for (let sent = 0; sent < total; sent += block.length) hash.update(block.subarray(0, Math.min(block.length, total - sent)));
  let sent = 0;
  const stream = new Readable({
    read() {
      if (sent >= total) return this.push(null);
      const n = Math.min(block.length, total - sent);
      sent += n;
      this.push(block.subarray(0, n));
    },
  });
  return { stream, hash: hash.digest('hex') };
}

describe('RPC over a polling connection', () => {
  let server: CommsServer;
  let tentacle: TentacleComms;
  let tp: string;
  const started: string[] = [];
  const cancelled: string[] = [];

  const table: Record<string, Handler> = {
    echo,
    fail: async () => {
      throw new Error('boom');
    },
    // What a newer Tentacle, or an older one, may send: codes this version does not use.
    'fail.as': async (args) => {
      throw Object.defineProperty(new ReefError('REEF_INTERNAL', 'sent by another version'), 'code', { value: (args as { code: string }).code });
    },
    'upload.hash': async (_args, ctx) => sha256Of(ctx.body!),
    'download': async (args) => {
      const { stream, hash } = patternStream((args as { bytes: number }).bytes);
      return new StreamingResult({ hash }, stream);
    },
    'wait.forever': async (args, ctx) => {
      started.push((args as { id: string }).id);
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
      cancelled.push((args as { id: string }).id);
      throw ctx.signal.reason;
    },
    'slow.echo': async (args) => {
      await new Promise((r) => setTimeout(r, 20));
      return args;
    },
  };

  before(async () => {
    const ids = await testIdentities();
    tp = ids.tentacle.thumbprint;
    const started = await startServer(new Set([tp]), { maxMessageBytes: 64 * 1024 });
    server = started.server;
    tentacle = (await startPollingTentacle(started.port, table)).comms;
    await connected(server, tp);
  });
  after(async () => {
    await tentacle.close();
    await server.close();
  });

  test('a call with JSON arguments returns the JSON result', async () => {
    const args = { text: 'héllo ✓', n: [1, 2, 3], nested: { ok: true } };
    assert.deepEqual(await server.call({ thumbprint: tp }, 'echo', args), args);
  });

  test('a failing method rejects with its message; an unknown method with REEF_UNKNOWN_METHOD', async () => {
    await assert.rejects(server.call({ thumbprint: tp }, 'fail', {}), /boom/);
    await assert.rejects(server.call({ thumbprint: tp }, 'no.such', {}), { code: 'REEF_UNKNOWN_METHOD' });
  });

  test('an error code this version does not know is REEF_PEER_ERROR; a former code is read as today', async () => {
    const newer = { code: 'REEF_FROM_A_NEWER_TENTACLE' };
    await assert.rejects(server.call({ thumbprint: tp }, 'fail.as', newer), { code: 'REEF_PEER_ERROR', receivedAs: newer.code, message: 'sent by another version' });
    await assert.rejects(server.call({ thumbprint: tp }, 'fail.as', { code: 'REEF_CLOSED' }), { code: 'REEF_SHUTTING_DOWN', receivedAs: 'REEF_CLOSED' });
    assert.deepEqual(await server.call({ thumbprint: tp }, 'echo', 'still here'), 'still here');
  });

  test('100 concurrent calls share one connection and all return their own result', async () => {
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => server.call({ thumbprint: tp }, 'slow.echo', { i })));
    assert.deepEqual(results, Array.from({ length: 100 }, (_, i) => ({ i })));
    assert.equal(server.links.connections(tp).length, 1);
  });

  test('a 100 MiB upload streams to the tentacle with its hash intact', async () => {
    const { stream, hash } = patternStream(100 * 1024 * 1024);
    const result = (await server.call({ thumbprint: tp }, 'upload.hash', {}, { body: stream, deadlineMs: 0 })) as { hash: string; bytes: number };
    assert.equal(result.bytes, 100 * 1024 * 1024);
    assert.equal(result.hash, hash);
  });

  test('a 100 MiB download streams back with its hash intact', async () => {
    const { result, body } = await server.callForBody({ thumbprint: tp }, 'download', { bytes: 100 * 1024 * 1024 }, { deadlineMs: 0 });
    const got = await sha256Of(body);
    assert.equal(got.bytes, 100 * 1024 * 1024);
    assert.equal(got.hash, (result as { hash: string }).hash);
  });

  test('cancelling a call in flight aborts it on the tentacle; the connection stays usable', async () => {
    const controller = new AbortController();
    const call = server.call({ thumbprint: tp }, 'wait.forever', { id: 'c1' }, { signal: controller.signal });
    while (!started.includes('c1')) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    await assert.rejects(call, { code: 'REEF_CALL_CANCELLED' });
    while (!cancelled.includes('c1')) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(await server.call({ thumbprint: tp }, 'echo', 'still here'), 'still here');
  });

  test('a call past its deadline fails with REEF_DEADLINE_EXCEEDED and is aborted on the tentacle', async () => {
    await assert.rejects(server.call({ thumbprint: tp }, 'wait.forever', { id: 'd1' }, { deadlineMs: 100 }), { code: 'REEF_DEADLINE_EXCEEDED' });
    while (!cancelled.includes('d1')) await new Promise((r) => setTimeout(r, 5));
  });

  test('an oversized argument is refused before sending; other calls are not disturbed', async () => {
    await assert.rejects(server.call({ thumbprint: tp }, 'echo', 'x'.repeat(70 * 1024)), { code: 'REEF_MESSAGE_TOO_LARGE' });
    assert.equal(await server.call({ thumbprint: tp }, 'echo', 'small'), 'small');
  });

  test('an oversized message arriving at the tentacle ends that call only', async () => {
    // The tentacle's own limit is the default 16 MiB; a second tentacle with a tiny limit
    // receives a message the server considers fine.
    const ids = await testIdentities();
    const strict = new TentacleComms({ identity: ids.stranger, services: services({ echo }), limits: { maxMessageBytes: 1024 } });
    const trusted = new Set([tp, ids.stranger.thumbprint]);
    const { server: s2, port } = await startServer(trusted);
    strict.poll({ host: '127.0.0.1', port, carrier: 'tcp', trusted: () => [ids.server.thumbprint] });
    try {
      await connected(s2, ids.stranger.thumbprint);
      const target = { thumbprint: ids.stranger.thumbprint };
      await assert.rejects(s2.call(target, 'echo', 'y'.repeat(4096)), { code: 'REEF_MESSAGE_TOO_LARGE' });
      assert.equal(await s2.call(target, 'echo', 'fine'), 'fine');
      assert.equal(s2.links.connections(ids.stranger.thumbprint).length, 1);
    } finally {
      await strict.close();
      await s2.close();
    }
  });
});

describe('RPC over a listening connection', () => {
  test('the server dials the tentacle and the same services answer', async () => {
    const ids = await testIdentities();
    const tentacle = new TentacleComms({ identity: ids.tentacle, services: services({ echo }) });
    const trusted = [ids.server.thumbprint];
    const port = await tentacle.listen(0, '127.0.0.1', (tp) => trusted.includes(tp), () => trusted);
    const { server } = await startServer(new Set());
    try {
      const target = { thumbprint: ids.tentacle.thumbprint, listening: { host: '127.0.0.1', port } };
      const results = await Promise.all([server.call(target, 'echo', 1), server.call(target, 'echo', 2)]);
      assert.deepEqual(results, [1, 2]);
      const links = server.links.connections(ids.tentacle.thumbprint);
      assert.equal(links.length, 1, 'concurrent first calls share one dialled connection');
      assert.equal(links[0]!.peer.carrier, 'listening');
    } finally {
      await server.close();
      await tentacle.close();
    }
  });
});

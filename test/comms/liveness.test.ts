/**
 * Liveness by progress and small calls first, on a slow link in memory (shaped-pipe.ts:
 * writes are accepted at once and delivered at a fixed rate, as a kernel's send buffer in
 * front of a slow line does). The same behaviours on a real shaped network link are in
 * test/comms/shaped-link.slow.test.ts and test/e2e/shaped-link.slow.test.ts (root only).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { resolveLimits } from '../../src/comms/limits.js';
import { RpcClient } from '../../src/comms/rpc/client.js';
import { ServiceHost } from '../../src/comms/rpc/host.js';
import type { Handler } from '../../src/comms/index.js';
import { silentLogger } from '../../src/logging.js';
import { shapedPipe } from '../support/shaped-pipe.js';
import { echo, services } from './harness.js';
import { bytes } from '../support/shaped-pipe.js';

const RATE = 256 * 1024; // bytes per second each way
const limits = resolveLimits({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 400 });
const peer = { thumbprint: 'T', remoteAddress: 'shaped-memory', carrier: 'memory' };

const upload: Handler = async (_args, { body }) => {
  let size = 0;
  for await (const chunk of body!) size += (chunk as Buffer).length;
  return { size };
};


function connect() {
  const pipe = shapedPipe(RATE);
  const host = new ServiceHost(services({ echo, upload }), limits, silentLogger);
  const served = host.serve(pipe.b, peer);
  const client = new RpcClient(pipe.a, peer, limits, silentLogger);
  let closedAt = 0;
  const clientClosed = client.closed.then((reason) => ((closedAt = performance.now()), reason));
  return {
    pipe,
    client,
    served,
    clientClosed,
    closedAt: () => closedAt,
    close() {
      client.close(new Error('test over'));
      served.close();
      pipe.close();
    },
  };
}

test('a transfer on a slow link is never taken for a dead link, and small calls pass it', async () => {
  const link = connect();
  try {
    // Idle for longer than the heartbeat timeout: answered PINGs keep the link alive.
    await sleep(limits.heartbeatTimeoutMs * 2);
    assert.equal(link.client.isOpen, true, 'an idle link stays up');

    const size = 1024 * 1024; // 4 s at this rate, ten times the heartbeat timeout
    const started = performance.now();
    const transfer = link.client.call('upload', {}, { body: bytes(size), deadlineMs: 0 });
    let done = false;
    void transfer.finally(() => (done = true)).catch(() => {});
    const latencies: number[] = [];
    let mostQueued = 0;
    while (!done) {
      const sent = performance.now();
      assert.deepEqual(await link.client.call('echo', { n: latencies.length }), { n: latencies.length });
      latencies.push(performance.now() - sent);
      mostQueued = Math.max(mostQueued, link.pipe.queued());
      await sleep(100);
    }
    assert.deepEqual(await transfer, { size });
    const seconds = (performance.now() - started) / 1000;
    assert.equal(link.client.isOpen, true, 'no heartbeat verdict during the transfer');
    // Without the pacer the whole 1 MiB HTTP/2 window queues (4 s); with it, a fraction of a second.
    assert.ok(mostQueued <= 128 * 1024, `at most 128 KiB queued on the link, saw ${mostQueued}`);
    assert.ok(Math.max(...latencies) < 1500, `small calls answered within 1.5 s during the transfer: ${latencies.map(Math.round).join(', ')} ms`);
    // The transfer still fills the link (npm run bench -- small-calls measures how closely on a real one;
    // here a busy machine's timers may cost some of it).
    assert.ok(size / seconds >= RATE * 0.8, `throughput ${Math.round(size / seconds / 1024)} KiB/s of ${RATE / 1024}`);
  } finally {
    link.close();
  }
});

test('a link cut during a transfer is noticed within the heartbeat timeout', async () => {
  const link = connect();
  try {
    const failure = link.client.call('upload', {}, { body: bytes(4 * 1024 * 1024), deadlineMs: 0 }).then(
      () => assert.fail('the transfer cannot succeed over a cut link'),
      (err: Error & { code?: string }) => err,
    );
    await sleep(1000);
    const cutAt = performance.now();
    link.pipe.cut();
    const reason = (await link.clientClosed) as Error & { code?: string };
    const noticedAfter = link.closedAt() - cutAt;
    assert.equal(reason?.code, 'REEF_HEARTBEAT_TIMEOUT');
    assert.match(reason.message, /Nothing arrived from the peer/);
    assert.ok(noticedAfter <= limits.heartbeatTimeoutMs + 300, `within the timeout and a margin: ${Math.round(noticedAfter)} ms`);
    assert.ok(['REEF_CONNECTION_LOST', 'REEF_HEARTBEAT_TIMEOUT', 'REEF_BODY_FAILED'].includes((await failure).code!), 'the transfer failed as a lost link');
    const served = await link.served.closed;
    assert.equal((served as Error & { code?: string })?.code, 'REEF_HEARTBEAT_TIMEOUT', 'the serving side noticed too');
  } finally {
    link.close();
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { resolveLimits } from '../../src/comms/limits.js';
import { RpcClient } from '../../src/comms/rpc/client.js';
import { ServiceHost } from '../../src/comms/rpc/host.js';
import { silentLogger } from '../../src/logging.js';
import { echo, services } from './harness.js';

/**
 * Two connected in-memory streams. What `b` writes reaches `a` in one chunk per 20 ms, as
 * a proxy or a busy kernel can deliver it: an answer's headers, data and end of stream
 * then arrive in a single read.
 */
function coalescingPair(): [Duplex, Duplex] {
  let a!: Duplex;
  let b!: Duplex;
  let held: Buffer[] = [];
  let timer: NodeJS.Timeout | undefined;
  a = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, done) {
      b.push(chunk);
      done();
    },
  });
  b = new Duplex({
    read() {},
    destroy(err, done) {
      clearTimeout(timer);
      done(err);
    },
    write(chunk: Buffer, _enc, done) {
      held.push(chunk);
      timer ??= setTimeout(() => {
        // Take the chunks before pushing: the reader may write back (and queue new chunks)
        // within push() itself.
        const chunk = Buffer.concat(held);
        held = [];
        timer = undefined;
        a.push(chunk);
      }, 20);
      done();
    },
  });
  return [a, b];
}

test('an answer whose headers, data and end of stream arrive in one read is delivered, not reported lost', async () => {
  const limits = resolveLimits({ heartbeatIntervalMs: 0 });
  const [callerSide, serviceSide] = coalescingPair();
  const peer = { thumbprint: 'T', remoteAddress: 'memory', carrier: 'memory' };
  const host = new ServiceHost(services({ echo }), limits, silentLogger);
  const served = host.serve(serviceSide, peer);
  const client = new RpcClient(callerSide, peer, limits, silentLogger);
  try {
    for (let i = 0; i < 20; i++) assert.deepEqual(await client.call('echo', { i }), { i });
  } finally {
    // Tear everything down hard: nothing of this in-memory pipe may keep the process alive.
    client.close(new Error('test over'));
    served.close();
    callerSide.destroy();
    serviceSide.destroy();
  }
});

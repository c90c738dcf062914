import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { OFF_THREAD_HASH_BYTES, OffThreadHash, uploadHash } from '../../../src/tentacle/services/upload-hash.js';

const MiB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Feeds `data` in chunks of the given sizes (cycled), waiting whenever update asks to. */
async function feed(hash: { update(chunk: Buffer): void | Promise<void> }, data: Buffer, sizes: number[]): Promise<void> {
  for (let offset = 0, i = 0; offset < data.length; i++) {
    const end = Math.min(data.length, offset + sizes[i % sizes.length]!);
    await hash.update(data.subarray(offset, end));
    offset = end;
  }
}

test('large uploads hash on a worker thread, small ones inline', () => {
  const large = uploadHash(OFF_THREAD_HASH_BYTES);
  const small = uploadHash(OFF_THREAD_HASH_BYTES - 1);
  assert.ok(large instanceof OffThreadHash);
  assert.ok(!(small instanceof OffThreadHash));
  large.close();
  small.close();
});

test('the worker thread digest equals SHA-256 of the bytes, whatever the chunking', async () => {
  // Chunks that straddle the 1 MiB slabs, odd sizes, and ones larger than all four slabs together.
  const data = randomBytes(11 * MiB + 12345);
  for (const sizes of [[16 * 1024], [1, 65_537, 999_999], [6 * MiB + 3]]) {
    const hash = new OffThreadHash();
    await feed(hash, data, sizes);
    assert.equal(await hash.digest(), sha256(data), `chunks of ${sizes.join(', ')} bytes`);
  }
  const empty = new OffThreadHash();
  assert.equal(await empty.digest(), sha256(Buffer.alloc(0)));
});

test('a chunk may be reused once its update settled: the worker hashes a copy', async () => {
  const hash = new OffThreadHash();
  const chunk = Buffer.alloc(256 * 1024);
  const expected = createHash('sha256');
  for (let i = 0; i < 40; i++) {
    chunk.fill(i);
    expected.update(chunk);
    await hash.update(chunk);
  }
  assert.equal(await hash.digest(), expected.digest('hex'));
});

test('a closed hash refuses more work instead of hanging', async () => {
  const hash = new OffThreadHash();
  await hash.update(randomBytes(1000));
  hash.close();
  assert.throws(() => hash.update(randomBytes(10)), /closed/);
  await assert.rejects(hash.digest(), /closed/);
});

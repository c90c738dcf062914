import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { isReefError } from '../../../src/errors.js';
import { createBlobStore, type BlobStore } from '../../../src/server/files/blobs.js';

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('blob store', () => {
  let dir: string;
  let blobs: BlobStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'reef-blobs-'));
    blobs = createBlobStore(join(dir, 'files'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const names = () => readdir(blobs.dir);

  it('stores a stream under its SHA-256 and reads it back, from any offset', async () => {
    const data = Buffer.alloc(300_000, 7);
    data.write('hello', 1000);
    const info = await blobs.put(Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]), { maxBytes: 1_000_000 });
    assert.deepEqual(info, { sha256: sha(data), size: data.length });
    assert.deepEqual(await readFile(join(blobs.dir, info.sha256)), data);
    assert.deepEqual(await blobs.stat(info.sha256), { size: data.length });
    assert.deepEqual(await collect(blobs.open(info.sha256)), data);
    assert.deepEqual(await collect(blobs.open(info.sha256, 1000)), data.subarray(1000));
    assert.deepEqual(await collect(blobs.open(info.sha256, data.length)), Buffer.alloc(0));
    assert.throws(() => blobs.open(info.sha256, data.length + 1), (e: unknown) => isReefError(e, 'REEF_INVALID_ARGUMENT'));
  });

  it('keeps one copy of the same content and leaves no temp files', async () => {
    const data = Buffer.from('same bytes');
    const a = await blobs.put(Readable.from([data]), { maxBytes: 100, expectedSha256: sha(data) });
    const b = await blobs.put(Readable.from([data]), { maxBytes: 100 });
    assert.deepEqual(a, b);
    assert.ok((await names()).every((n) => /^[0-9a-f]{64}$/.test(n)));
  });

  it('stores an empty file', async () => {
    const info = await blobs.put(Readable.from([]), { maxBytes: 10 });
    assert.deepEqual(info, { sha256: sha(Buffer.alloc(0)), size: 0 });
  });

  it('refuses a hash mismatch and an oversized stream, removing the temp file', async () => {
    const before = (await names()).sort();
    await assert.rejects(
      blobs.put(Readable.from([Buffer.from('abc')]), { maxBytes: 100, expectedSha256: sha(Buffer.from('abd')) }),
      (e: unknown) => isReefError(e, 'REEF_HASH_MISMATCH'),
    );
    const big = new PassThrough();
    const pending = blobs.put(big, { maxBytes: 10 });
    big.write(Buffer.alloc(6));
    big.write(Buffer.alloc(6));
    await assert.rejects(pending, (e: unknown) => isReefError(e, 'REEF_TOO_LARGE'));
    assert.equal(big.destroyed, false, 'the body is left to its owner');
    assert.deepEqual((await names()).sort(), before);
  });

  it('leaves nothing behind when the body fails or closes early', async () => {
    const before = (await names()).sort();
    const failing = new PassThrough();
    const p1 = blobs.put(failing, { maxBytes: 1000 });
    failing.write(Buffer.alloc(50));
    setImmediate(() => failing.destroy(new Error('connection reset')));
    await assert.rejects(p1, (e: unknown) => isReefError(e, 'REEF_UPLOAD_INCOMPLETE'));
    const closing = new PassThrough();
    const p2 = blobs.put(closing, { maxBytes: 1000 });
    closing.write(Buffer.alloc(50));
    setImmediate(() => closing.destroy());
    await assert.rejects(p2, (e: unknown) => isReefError(e, 'REEF_UPLOAD_INCOMPLETE'));
    assert.deepEqual((await names()).sort(), before);
  });

  it('accepts only lowercase hex SHA-256 names, so no path can escape the directory', async () => {
    for (const bad of ['../etc/passwd', 'A'.repeat(64), 'a'.repeat(63), `${'a'.repeat(64)}/x`, '', `..%2f${'a'.repeat(60)}`]) {
      await assert.rejects(blobs.stat(bad), (e: unknown) => isReefError(e, 'REEF_INVALID_ARGUMENT'), bad);
      assert.throws(() => blobs.open(bad), (e: unknown) => isReefError(e, 'REEF_INVALID_ARGUMENT'), bad);
    }
    await assert.rejects(blobs.put(Readable.from([]), { maxBytes: 1, expectedSha256: '../x' }), (e: unknown) => isReefError(e, 'REEF_INVALID_ARGUMENT'));
    assert.equal(await blobs.stat('f'.repeat(64)), null);
    assert.throws(() => blobs.open('f'.repeat(64)), (e: unknown) => isReefError(e, 'REEF_NOT_FOUND'));
  });
});

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import https from 'node:https';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { UploadedFile } from '../../../src/api/contract.js';
import { ReefError } from '../../../src/errors.js';
import { eventually, startHarness, type Harness } from './harness.js';

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const octets = { 'content-type': 'application/octet-stream' };

describe('api files', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ maxUploadBytes: 1024 * 1024 });
  });
  after(() => h.close());

  it('uploads a streamed file (201) and finds it by hash', async () => {
    const data = Buffer.alloc(700_000, 3);
    const chunks = [data.subarray(0, 300_000), data.subarray(300_000)];
    const up = await h.client.json<UploadedFile>('POST', '/api/files', { stream: Readable.from(chunks), headers: octets });
    assert.deepEqual(up, { sha256: sha(data), size: data.length });
    assert.deepEqual(await h.client.json('GET', `/api/files/${up.sha256}`), up);
    assert.deepEqual(await h.client.json('GET', `/api/files/${up.sha256.toUpperCase()}`), up);
    const missing = await h.raw('GET', `/api/files/${'0'.repeat(64)}`);
    assert.equal(missing.status, 404);
    const bad = await h.raw('GET', '/api/files/..%2F..%2Fetc%2Fpasswd');
    assert.equal(bad.status, 400);
  });

  it('verifies x-reef-sha256 when sent', async () => {
    const data = Buffer.from('checked content');
    const ok = await h.raw('POST', '/api/files', { headers: { ...octets, 'x-reef-sha256': sha(data).toUpperCase() }, body: data });
    assert.equal(ok.status, 201);
    assert.equal(ok.json.sha256, sha(data));
    const mismatch = await h.raw('POST', '/api/files', { headers: { ...octets, 'x-reef-sha256': sha(Buffer.from('other')) }, body: data });
    assert.equal(mismatch.status, 400);
    assert.equal(mismatch.json.error.code, 'REEF_HASH_MISMATCH');
    const malformed = await h.raw('POST', '/api/files', { headers: { ...octets, 'x-reef-sha256': 'abc' }, body: data });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.json.error.code, 'REEF_INVALID_REQUEST');
  });

  it('refuses a wrong content type with 415', async () => {
    const r = await h.raw('POST', '/api/files', { headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(r.status, 415);
  });

  it('refuses uploads over the limit with 413, declared or streamed, and keeps nothing', async () => {
    const big = Buffer.alloc(1024 * 1024 + 1);
    const declared = await h.raw('POST', '/api/files', { headers: octets, body: big });
    assert.equal(declared.status, 413);
    assert.equal(declared.json.error.code, 'REEF_TOO_LARGE');
    const chunks = Array.from({ length: 9 }, () => Buffer.alloc(256 * 1024));
    await assert.rejects(h.client.json('POST', '/api/files', { stream: Readable.from(chunks), headers: octets }), (err: ReefError) => err.code === 'REEF_TOO_LARGE');
    assert.equal(await h.blobs.stat(sha(big)), null);
    await eventually(async () => (await readdir(h.blobs.dir)).every((n) => !n.endsWith('.partial')), 'no temp files');
  });

  it('leaves nothing behind when the client disconnects mid-upload', async () => {
    const req = https.request({
      host: '127.0.0.1',
      port: h.port,
      method: 'POST',
      path: '/api/files',
      headers: { ...octets, 'x-reef-apikey': h.adminKey },
      rejectUnauthorized: false,
    });
    req.on('error', () => undefined);
    req.write(Buffer.alloc(200_000, 1));
    await eventually(async () => (await readdir(h.blobs.dir)).some((n) => n.endsWith('.partial')), 'the upload to start');
    req.destroy();
    await eventually(async () => (await readdir(h.blobs.dir)).every((n) => !n.endsWith('.partial')), 'the temp file to go');
    assert.equal((await h.raw('GET', '/api')).status, 200);
  });

  it('DELETE /api/files/:sha256: 204, then 404; 409 naming the tasks while an unfinished task needs it; 400 for a non-hash', async () => {
    const kept = await h.client.json<UploadedFile>('POST', '/api/files', { stream: Readable.from([Buffer.from('to push')]), headers: octets });
    const loose = await h.client.json<UploadedFile>('POST', '/api/files', { stream: Readable.from([Buffer.from('to delete')]), headers: octets });

    const deleted = await h.raw('DELETE', `/api/files/${loose.sha256}`);
    assert.equal(deleted.status, 204);
    assert.equal(deleted.text, '');
    assert.equal(await h.blobs.stat(loose.sha256), null);
    const again = await h.raw('DELETE', `/api/files/${loose.sha256}`);
    assert.equal(again.status, 404);
    assert.equal(again.json.error.code, 'REEF_NOT_FOUND');
    assert.equal((await h.raw('DELETE', '/api/files/not-a-hash')).status, 400);
    assert.equal((await h.raw('DELETE', `/api/files/${kept.sha256}`, { auth: false })).status, 401);

    await h.store.createMachine({ name: 'files-1', kind: 'target', thumbprint: 'EF'.repeat(32), commsStyle: 'polling', environments: ['Production'], roles: ['web'] });
    const task = await h.client.json<{ id: string }>('POST', '/api/tasks', { body: { kind: 'push-file', target: { machines: ['files-1'] }, file: { sha256: kept.sha256, destination: '/opt/app/x' } } });
    const busy = await h.raw('DELETE', `/api/files/${kept.sha256}`);
    assert.equal(busy.status, 409);
    assert.equal(busy.json.error.code, 'REEF_IN_USE');
    assert.deepEqual(busy.json.error.details, { taskIds: [task.id] });
    assert.match(busy.json.error.message, new RegExp(task.id));
    assert.ok(await h.blobs.stat(kept.sha256), 'kept while needed');

    await h.store.finishTask(task.id, { state: 'Cancelled' });
    assert.equal((await h.raw('DELETE', `/api/files/${kept.sha256}`)).status, 204);
  });
});

import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isReefError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/logging.js';
import { FileService } from '../../../src/tentacle/services/files.js';

let dir: string;
let root: string;
let outside: string;
let files: FileService;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reef-files-'));
  root = join(dir, 'root');
  outside = join(dir, 'outside');
  await mkdir(root);
  await mkdir(outside);
  files = new FileService({ allowedRoots: [root], logger: silentLogger });
});

afterEach(() => rm(dir, { recursive: true, force: true }));

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** A body delivered in small chunks, as it would come off the network. */
function body(data: Buffer, chunk = 16 * 1024): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) parts.push(data.subarray(i, i + chunk));
  return Readable.from(parts);
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

test('a file uploads in full, into new parent directories, and nothing else is left behind', async () => {
  const data = randomBytes(300_000);
  const target = join(root, 'a', 'b', 'file.bin');
  const request = { path: target, size: data.length, sha256: sha256(data).toUpperCase() };
  assert.deepEqual(await files.beginUpload(request), { offset: 0 });
  const result = await files.upload({ ...request, offset: 0 }, body(data));
  assert.deepEqual(result, { path: target, size: data.length, sha256: sha256(data) });
  assert.ok((await readFile(target)).equals(data));
  assert.deepEqual(await readdir(join(root, 'a', 'b')), ['file.bin']);
  // An empty file works too, and upload() without beginUpload() starts at 0.
  const empty = join(root, 'empty');
  await files.upload({ path: empty, size: 0, sha256: sha256(Buffer.alloc(0)), offset: 0 }, body(Buffer.alloc(0)));
  assert.equal((await readFile(empty)).length, 0);
});

test('an upload cut halfway resumes from where it stopped', async () => {
  const data = randomBytes(200_001);
  const half = 100_000;
  const target = join(root, 'resume.bin');
  const request = { path: target, size: data.length, sha256: sha256(data) };
  await assert.rejects(files.upload({ ...request, offset: 0 }, body(data.subarray(0, half))), (e) => {
    assert.ok(isReefError(e, 'REEF_UPLOAD_INCOMPLETE'));
    assert.match(e.message, /resume from offset 100000/);
    return true;
  });
  await assert.rejects(readFile(target), { code: 'ENOENT' });
  assert.deepEqual(await files.beginUpload(request), { offset: half });
  const result = await files.upload({ ...request, offset: half }, body(data.subarray(half)));
  assert.equal(result.sha256, sha256(data));
  assert.ok((await readFile(target)).equals(data));
  assert.deepEqual(await readdir(root), ['resume.bin']);
});

test('a partial upload of a different file is discarded', async () => {
  const data = randomBytes(1000);
  const target = join(root, 'x.bin');
  await assert.rejects(
    files.upload({ path: target, size: data.length, sha256: sha256(data), offset: 0 }, body(data.subarray(0, 400))),
    (e) => isReefError(e, 'REEF_UPLOAD_INCOMPLETE'),
  );
  const other = randomBytes(1000);
  assert.deepEqual(await files.beginUpload({ path: target, size: other.length, sha256: sha256(other) }), { offset: 0 });
  assert.deepEqual(await files.beginUpload({ path: target, size: 2000, sha256: sha256(other) }), { offset: 0 });
});

test('a hash mismatch is refused and the received bytes discarded', async () => {
  const data = randomBytes(50_000);
  const target = join(root, 'bad.bin');
  const wrong = sha256(Buffer.from('something else'));
  await assert.rejects(files.upload({ path: target, size: data.length, sha256: wrong, offset: 0 }, body(data)), (e) => {
    assert.ok(isReefError(e, 'REEF_HASH_MISMATCH'));
    assert.match(e.message, new RegExp(sha256(data)));
    return true;
  });
  assert.deepEqual(await readdir(root), []);
});

test('more bytes than announced are refused', async () => {
  const data = randomBytes(100);
  await assert.rejects(
    files.upload({ path: join(root, 'big'), size: 50, sha256: sha256(data.subarray(0, 50)), offset: 0 }, body(data, 30)),
    (e) => isReefError(e, 'REEF_UPLOAD_TOO_LARGE'),
  );
  assert.deepEqual(await readdir(root), []);
});

test('an offset that does not match the partial is REEF_BAD_OFFSET', async () => {
  const data = randomBytes(100);
  const request = { path: join(root, 'off'), size: data.length, sha256: sha256(data) };
  await files.beginUpload(request);
  await assert.rejects(files.upload({ ...request, offset: 5 }, body(data.subarray(5))), (e) => {
    assert.ok(isReefError(e, 'REEF_BAD_OFFSET'));
    assert.match(e.message, /from offset 0/);
    return true;
  });
  await assert.rejects(files.upload({ ...request, offset: -1 }, body(data)), (e) => isReefError(e, 'REEF_BAD_OFFSET'));
});

test('paths outside the allowed roots are refused, also via .. and via symlinks', async () => {
  const data = Buffer.from('x');
  const upload = (p: string) => files.beginUpload({ path: p, size: 1, sha256: sha256(data) });
  const notAllowed = (e: unknown) => {
    assert.ok(isReefError(e, 'REEF_PATH_NOT_ALLOWED'), String(e));
    assert.match((e as Error).message, new RegExp(root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    return true;
  };
  await assert.rejects(upload(join(outside, 'f')), notAllowed);
  await assert.rejects(upload(`${root}/../outside/f`), notAllowed);
  await assert.rejects(upload(`${root}/new/../../outside/f`), notAllowed);
  await assert.rejects(upload(root), notAllowed);
  await symlink(outside, join(root, 'link'));
  await assert.rejects(upload(join(root, 'link', 'f')), notAllowed);
  await assert.rejects(upload(join(root, 'link', 'deeper', 'f')), notAllowed);
  await writeFile(join(outside, 'secret'), 'secret');
  await symlink(join(outside, 'secret'), join(root, 'secret-link'));
  await assert.rejects(files.download({ path: join(root, 'secret-link') }), notAllowed);
  await assert.rejects(files.download({ path: join(root, 'link', 'secret') }), notAllowed);
  await assert.rejects(files.stat({ path: join(root, 'secret-link') }), notAllowed);
  await assert.rejects(upload('relative/path'), (e) => isReefError(e, 'REEF_INVALID_ARGUMENT'));
  assert.deepEqual(await readdir(outside), ['secret']);
  // A root given through a symlink still works: roots are compared after realpath.
  await symlink(root, join(dir, 'root-link'));
  const viaLink = new FileService({ allowedRoots: [join(dir, 'root-link')], logger: silentLogger });
  assert.deepEqual(await viaLink.beginUpload({ path: join(root, 'ok'), size: 1, sha256: sha256(data) }), { offset: 0 });
});

test('download streams the file, from an offset, with its SHA-256 on request', async () => {
  const data = randomBytes(150_000);
  const file = join(root, 'down.bin');
  await writeFile(file, data);
  const full = await files.download({ path: file, sha256: true });
  assert.equal(full.size, data.length);
  assert.equal(full.sha256, sha256(data));
  assert.ok((await collect(full.body)).equals(data));
  const rest = await files.download({ path: file, offset: 100_000 });
  assert.equal(rest.sha256, undefined);
  assert.ok((await collect(rest.body)).equals(data.subarray(100_000)));
  const none = await files.download({ path: file, offset: data.length });
  assert.equal((await collect(none.body)).length, 0);
  await assert.rejects(files.download({ path: file, offset: data.length + 1 }), (e) => isReefError(e, 'REEF_BAD_OFFSET'));
  await assert.rejects(files.download({ path: join(root, 'missing') }), (e) => isReefError(e, 'REEF_FILE_NOT_FOUND'));
  await assert.rejects(files.download({ path: root }), (e) => isReefError(e, 'REEF_NOT_A_FILE'));
});

test('stat describes files, directories and missing paths', async () => {
  await writeFile(join(root, 'f'), 'hello');
  const f = await files.stat({ path: join(root, 'f') });
  assert.equal(f.exists, true);
  assert.equal(f.type, 'file');
  assert.equal(f.size, 5);
  assert.ok(!Number.isNaN(Date.parse(f.modifiedAt ?? '')));
  assert.equal((await files.stat({ path: root })).type, 'directory');
  assert.deepEqual(await files.stat({ path: join(root, 'no', 'such') }), { path: join(root, 'no', 'such'), exists: false });
  await assert.rejects(files.stat({ path: join(outside, 'no') }), (e) => isReefError(e, 'REEF_PATH_NOT_ALLOWED'));
});

test('a body that fails mid-stream keeps the partial; a second upload at once is REEF_UPLOAD_BUSY', async () => {
  const data = randomBytes(64 * 1024);
  const request = { path: join(root, 'flaky'), size: data.length * 2, sha256: sha256(Buffer.concat([data, data])), offset: 0 };
  let fail!: (err: Error) => void;
  const flaky = new Readable({ read() {} });
  flaky.push(data);
  const failed = new Promise<void>((resolve) => (fail = (err) => (flaky.destroy(err), resolve())));
  const first = files.upload(request, flaky);
  // The second upload must come while the first holds the file: once its bytes are on disk.
  for (let i = 0; i < 250 && (await stat(`${request.path}.reef-partial`).catch(() => null))?.size !== data.length; i++) await sleep(20);
  await assert.rejects(files.upload(request, body(data)), (e) => isReefError(e, 'REEF_UPLOAD_BUSY'));
  setTimeout(() => fail(new Error('connection reset')), 50);
  await failed;
  await assert.rejects(first, (e) => {
    assert.ok(isReefError(e, 'REEF_UPLOAD_INCOMPLETE'));
    assert.match(e.message, /connection reset/);
    return true;
  });
  assert.deepEqual(await files.beginUpload(request), { offset: data.length });
  await files.upload({ ...request, offset: data.length }, body(data));
  assert.ok((await readFile(request.path)).equals(Buffer.concat([data, data])));
});

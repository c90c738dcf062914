/**
 * Upload leftovers: temp files of cut-off uploads are swept (all of them when a server
 * starts alone, only abandoned ones otherwise), and files unused for the retention
 * period are deleted unless an unfinished task still needs them.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createBlobStore, type BlobStore } from '../../../src/server/files/blobs.js';
import { ABANDONED_UPLOAD_MS, filesNeededByUnfinishedTasks, sweepUploads } from '../../../src/server/files/retention.js';
import { startReefServer } from '../../../src/server/runtime.js';
import type { Store } from '../../../src/server/store/types.js';
import { tempStore, type SqliteTempStore } from '../store/helpers.js';

const DAY = 24 * 60 * 60 * 1000;
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function age(file: string, ms: number): Promise<void> {
  const then = new Date(Date.now() - ms);
  await utimes(file, then, then);
}

async function pushFileTask(store: Store, sha256: string): Promise<string> {
  const machine = (await store.listMachines())[0] ?? (await store.createMachine({ name: 'web-1', kind: 'target', thumbprint: 'CD'.repeat(32), commsStyle: 'polling', environments: ['Production'], roles: ['web'] }));
  const task = await store.createTask({ kind: 'push-file', spec: { file: { sha256, destination: '/opt/app/app.tgz' } }, target: { machines: ['web-1'] }, machineIds: [machine.id] });
  return task.id;
}

describe('upload retention', () => {
  let dir: string;
  let t: SqliteTempStore;
  let blobs: BlobStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'reef-retention-'));
    t = await tempStore();
    blobs = createBlobStore(join(dir, 'files'));
  });
  after(async () => {
    await t.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('sweeps temp files: all with 0, only abandoned ones otherwise, never a blob', async () => {
    const fresh = join(blobs.dir, '.upload-aaaa.partial');
    const old = join(blobs.dir, '.upload-bbbb.partial');
    await writeFile(fresh, 'in progress');
    await writeFile(old, 'left by a crash');
    await age(old, ABANDONED_UPLOAD_MS + 1000);
    const kept = await blobs.put(Readable.from([Buffer.from('a blob')]), { maxBytes: 100 });
    await writeFile(join(blobs.dir, 'unrelated.txt'), 'not ours');

    assert.equal(await blobs.sweepPartials(ABANDONED_UPLOAD_MS), 1);
    assert.deepEqual((await readdir(blobs.dir)).sort(), ['.upload-aaaa.partial', kept.sha256, 'unrelated.txt'].sort());
    assert.equal(await blobs.sweepPartials(0), 1);
    assert.deepEqual((await readdir(blobs.dir)).sort(), [kept.sha256, 'unrelated.txt'].sort());
    await rm(join(blobs.dir, 'unrelated.txt'));
    await blobs.delete(kept.sha256);
  });

  it('deletes files unused for the retention period unless an unfinished task needs them', async () => {
    const put = async (text: string) => (await blobs.put(Readable.from([Buffer.from(text)]), { maxBytes: 100 })).sha256;
    const recent = await put('recent');
    const expired = await put('expired');
    const needed = await put('needed by a queued task');
    const finished = await put('needed by a finished task only');
    for (const sha256 of [expired, needed, finished]) await age(join(blobs.dir, sha256), 8 * DAY);
    const queuedTask = await pushFileTask(t.store, needed);
    const doneTask = await pushFileTask(t.store, finished);
    await t.store.finishTask(doneTask, { state: 'Success' });
    assert.deepEqual(await filesNeededByUnfinishedTasks(t.store), new Map([[needed, [queuedTask]]]));

    const result = await sweepUploads(blobs, t.store, 7 * DAY);
    assert.deepEqual(result.deleted.sort(), [expired, finished].sort());
    assert.deepEqual((await blobs.list()).map((b) => b.sha256).sort(), [recent, needed].sort());

    // Once the task is over, the file goes at the next sweep.
    await t.store.finishTask(queuedTask, { state: 'Cancelled' });
    assert.deepEqual((await sweepUploads(blobs, t.store, 7 * DAY)).deleted, [needed]);
  });

  it('an upload of the same bytes or a push restarts a file\'s retention', async () => {
    const data = Buffer.from('uploaded again');
    const { sha256 } = await blobs.put(Readable.from([data]), { maxBytes: 100 });
    await age(join(blobs.dir, sha256), 8 * DAY);
    await blobs.put(Readable.from([data]), { maxBytes: 100 });
    assert.deepEqual((await sweepUploads(blobs, t.store, 7 * DAY)).deleted, []);
    await age(join(blobs.dir, sha256), 8 * DAY);
    blobs.open(sha256).destroy();
    assert.deepEqual((await sweepUploads(blobs, t.store, 7 * DAY)).deleted, []);
    assert.equal(sha(data), sha256);
  });

  it('a server starting alone removes every temp file left in its files directory', async () => {
    const dataDir = join(dir, 'server');
    await mkdir(join(dataDir, 'files'), { recursive: true });
    const leftover = join(dataDir, 'files', '.upload-cccc.partial');
    await writeFile(leftover, 'cut off by a crash a moment ago');
    const server = await startReefServer({ dataDir, httpsPort: 0, commsPort: 0, host: '127.0.0.1' });
    try {
      assert.deepEqual(await readdir(join(dataDir, 'files')), []);
    } finally {
      await server.close();
    }
  });
});

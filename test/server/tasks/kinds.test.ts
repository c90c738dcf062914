import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { CreateTaskRequest } from '../../../src/api/contract.js';
import { isReefError } from '../../../src/errors.js';
import { TASK_KINDS, taskKind } from '../../../src/server/tasks/kinds/index.js';
import type { BlobSource } from '../../../src/server/tasks/machine-run.js';

const SHA = 'a'.repeat(64);
const blobs = (known: string[]): BlobSource => ({
  stat: async (sha256) => (known.includes(sha256) ? { size: 1 } : null),
  open: () => Readable.from([]),
});
const target = { machines: ['web-01'] };

test('every kind the REST contract accepts has an implementation, and nothing else does', () => {
  const accepted = CreateTaskRequest.options.map((option) => option.shape.kind.value).sort();
  assert.deepEqual(Object.keys(TASK_KINDS).sort(), accepted);
});

test('each kind stores the spec its machines run from', async () => {
  const script = { syntax: 'sh' as const, body: 'true' };
  assert.deepEqual(await taskKind('run-script').specOf({ kind: 'run-script', target, script, timeoutSeconds: 5 }, { blobs: blobs([]) }), { script, timeoutSeconds: 5 });
  assert.deepEqual(
    await taskKind('run-script').specOf({ kind: 'run-script', target, script, timeoutSeconds: 5, lostContactLimitSeconds: 60 }, { blobs: blobs([]) }),
    { script, timeoutSeconds: 5, lostContactLimitSeconds: 60 },
  );
  assert.deepEqual(await taskKind('health-check').specOf({ kind: 'health-check', target }, { blobs: blobs([]) }), {});
  const file = { sha256: SHA, destination: '/srv/app.tgz' };
  assert.deepEqual(await taskKind('push-file').specOf({ kind: 'push-file', target, file }, { blobs: blobs([SHA]) }), { file });
});

test('a push-file task of a file never uploaded is refused before it is stored', async () => {
  await assert.rejects(taskKind('push-file').specOf({ kind: 'push-file', target, file: { sha256: SHA, destination: '/srv/x' } }, { blobs: blobs([]) }), (err) => {
    assert.ok(isReefError(err, 'REEF_NOT_FOUND'));
    assert.match(err.message, /upload it first/);
    return true;
  });
});

test('only run-script leaves state on the Tentacle to release', () => {
  assert.equal(typeof TASK_KINDS['run-script'].release, 'function');
  assert.equal(TASK_KINDS['push-file'].release, undefined);
  assert.equal(TASK_KINDS['health-check'].release, undefined);
});

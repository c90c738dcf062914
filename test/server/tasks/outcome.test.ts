import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ScriptStatus } from '../../../src/api/tentacle/index.js';
import { isReefError } from '../../../src/errors.js';
import { outcomeOf } from '../../../src/server/tasks/kinds/run-script.js';
import { isFinal, overall } from '../../../src/server/tasks/outcome.js';

const finished = (fields: Partial<ScriptStatus>): ScriptStatus => ({ ticket: 't', state: 'Complete', lines: [], nextSeq: 1, more: false, ...fields });

test('a finished script becomes the machine outcome its status says', () => {
  const cases: [Partial<ScriptStatus>, ReturnType<typeof outcomeOf>][] = [
    [{ exitCode: 0 }, { state: 'Success', exitCode: 0 }],
    [{ exitCode: 3 }, { state: 'Failed', exitCode: 3, error: 'The script exited with code 3.' }],
    [{ exitCode: 143, cancelled: true }, { state: 'Cancelled', exitCode: 143, error: null }],
    [{ exitCode: 143, cancelled: true, timedOut: true }, { state: 'TimedOut', exitCode: 143, error: 'The script ran longer than its timeout and was stopped.' }],
    [{ error: 'Could not start the script: ENOENT' }, { state: 'Failed', exitCode: null, error: 'Could not start the script: ENOENT' }],
    [{ state: 'Orphaned' }, { state: 'Failed', exitCode: null, error: 'The Tentacle restarted while the script was running and its process is gone.' }],
    [{ state: 'Orphaned', exitCode: 1, error: 'gone' }, { state: 'Failed', exitCode: 1, error: 'gone' }],
  ];
  for (const [status, outcome] of cases) assert.deepEqual(outcomeOf(finished(status)), outcome, JSON.stringify(status));
});

test('a Complete script without an exit code is a protocol error, not a success', () => {
  assert.throws(() => outcomeOf(finished({})), (err) => isReefError(err, 'REEF_PROTOCOL_ERROR'));
});

test("a task's state follows its machines' outcomes", () => {
  const of = (...states: ('Success' | 'Failed' | 'Cancelled' | 'TimedOut')[]) => states.map((state) => ({ state }));
  assert.deepEqual(overall(of('Success', 'Success'), false), { state: 'Success', error: null });
  assert.deepEqual(overall(of('Success', 'Cancelled'), true), { state: 'Cancelled', error: null });
  assert.deepEqual(overall(of('Success', 'TimedOut'), false), { state: 'TimedOut', error: '1 of 2 machines timed out.' });
  assert.deepEqual(overall(of('Failed', 'TimedOut', 'Success'), false), { state: 'Failed', error: '2 of 3 machines did not succeed.' });
  // Cancelled parts of a task nobody cancelled (a deleted machine's, say) count as not succeeded.
  assert.deepEqual(overall(of('Cancelled', 'Success'), false), { state: 'Failed', error: '1 of 2 machines did not succeed.' });
  assert.equal(isFinal('Running'), false);
  assert.equal(isFinal('TimedOut'), true);
});

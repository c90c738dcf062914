/** How a machine run's contact with its Tentacle reads: the CLI's words and the portal's Contact cell. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contactNote, contactNotes } from '../../src/api/contact-note.js';
import type { TaskMachineView } from '../../src/api/contract.js';
import { contactCell } from '../../src/server/portal/format.js';
import { isSafeHtml, toHtml } from '../../src/server/portal/html.js';

const SINCE = '2026-12-05T10:00:00.000Z';
const run = (over: Partial<TaskMachineView>): TaskMachineView => ({
  machineId: 'm-1', machineName: 'web-01', state: 'Running', exitCode: null, error: null, startedAt: SINCE, finishedAt: null,
  lostContactSince: null, lateReport: null, ...over,
});
const cell = (m: TaskMachineView) => {
  const value = contactCell(m);
  return isSafeHtml(value) ? toHtml(value) : value;
};

test('in contact: nothing to say', () => {
  assert.equal(contactNote(run({})), '');
  assert.equal(cell(run({})), '');
  assert.deepEqual(contactNotes({ machines: [run({})] }), []);
});

test('waiting on a lost Tentacle, and failed for lost contact awaiting a late report', () => {
  const waiting = run({ lostContactSince: SINCE });
  assert.equal(contactNote(waiting), `lost contact since ${SINCE}`);
  assert.equal(cell(waiting), `Lost contact since <time datetime="${SINCE}" title="2026-12-05 10:00:00 UTC">2026-12-05 10:00:00 UTC</time>`);
  const failed = run({ state: 'Failed', lostContactSince: SINCE });
  assert.match(contactNote(failed), /^lost contact at .*; a late report follows if the Tentacle comes back$/);
  assert.match(cell(failed), /^Lost contact at <time .*; awaiting a late report$/);
  assert.equal(contactNote(run({ state: 'Cancelled', lostContactSince: SINCE })), '', 'a cancelled run awaits nothing');
});

test('a late report: the real outcome and the late lines, or why there is none', () => {
  const late = { receivedAt: '2026-12-05T11:00:00.000Z', state: 'Success' as const, exitCode: 0, error: null, lines: 1 };
  const reported = run({ state: 'Failed', lostContactSince: SINCE, lateReport: late });
  assert.equal(contactNote(reported), 'late report 2026-12-05T11:00:00.000Z: the script ended Success (exit code 0); 1 late line in the log');
  assert.match(cell(reported), /^Late report <time .*>: Success \(exit code 0\), 1 late line$/);
  const gone = run({ state: 'Failed', lostContactSince: SINCE, lateReport: { ...late, state: null, exitCode: null, error: 'expired <gone>', lines: 0 } });
  assert.equal(contactNote(gone), 'late report 2026-12-05T11:00:00.000Z: expired <gone>');
  assert.match(cell(gone), /: expired &lt;gone&gt;$/, 'escaped');
  assert.deepEqual(contactNotes({ machines: [run({}), reported] }), [`web-01: ${contactNote(reported)}`]);
});

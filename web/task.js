// Task page: per-machine logs live from the Server-Sent Events stream, states and exit
// codes as they change, and cancel. EventSource reconnects by itself and resumes after
// the last line it saw (Last-Event-ID), so nothing is shown twice or skipped.
import { api, clearError, setBadge, showError, timeElement } from './common.js';

const taskId = document.body.dataset.taskId;
const FINAL = ['Success', 'Failed', 'Cancelled', 'TimedOut'];
const streamStatus = document.getElementById('stream-status');
const cancelButton = document.getElementById('cancel'); // absent for roles that may not cancel
const cancelRequested = document.getElementById('cancel-requested');
const errorBox = document.getElementById('action-error');
const MARKS = { stderr: '! ', info: '· ', error: '✖ ' };
// A tab cannot hold a log of hundreds of MiB: each section keeps its last SHOWN_LINES lines
// and says how many earlier ones only the whole log (CLI, API) still has. Lines are put on
// screen once per frame, in one batch: laying the log out again for every line would keep
// the tab busy for minutes on a long log.
const SHOWN_LINES = 5000;
/** Per section: lines received since the last frame (at most SHOWN_LINES) and how many were skipped. */
const queued = new Map();
let frameRequested = false;

function logFor(machineId) {
  for (const section of document.querySelectorAll('section.log')) {
    if (section.dataset.logFor === (machineId ?? '')) return section;
  }
  return null;
}

function appendLine(line) {
  const section = logFor(line.machineId) ?? logFor(null);
  if (!section) return;
  let batch = queued.get(section);
  if (!batch) queued.set(section, (batch = { lines: [], skipped: 0 }));
  batch.lines.push(line);
  // A hidden tab gets no frames: what it could never show is counted, not kept.
  if (batch.lines.length > SHOWN_LINES) {
    batch.lines.shift();
    batch.skipped++;
  }
  if (!frameRequested) {
    frameRequested = true;
    requestAnimationFrame(showQueued);
  }
}

function showQueued() {
  frameRequested = false;
  for (const [section, batch] of queued) show(section, batch);
  queued.clear();
}

function show(section, { lines, skipped }) {
  section.hidden = false;
  const pre = section.querySelector('.log-lines');
  pre.querySelector('.empty')?.remove();
  const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
  const fragment = document.createDocumentFragment();
  for (const line of lines) {
    const span = document.createElement('span');
    span.className = `line stream-${line.stream}`;
    span.dataset.seq = String(line.seq);
    span.textContent = `${MARKS[line.stream] ?? ''}${line.text}\n`;
    fragment.append(span);
  }
  pre.append(fragment);
  let hidden = skipped;
  while (pre.childElementCount > SHOWN_LINES) {
    pre.firstElementChild.remove();
    hidden++;
  }
  if (hidden > 0) countHidden(section, pre, hidden);
  if (stick) pre.scrollTop = pre.scrollHeight;
}

function countHidden(section, pre, more) {
  let note = section.querySelector('.log-hidden');
  if (!note) {
    note = document.createElement('p');
    note.className = 'log-hidden muted small';
    note.dataset.hidden = '0';
    pre.before(note);
  }
  const hidden = Number(note.dataset.hidden) + more;
  note.dataset.hidden = String(hidden);
  note.textContent = `${hidden} earlier lines are not shown here; the whole log: reef tasks watch ${taskId}, or GET /api/tasks/${taskId}/log.`;
}

function setTime(element, iso) {
  if (element) element.replaceChildren(timeElement(iso, '—'));
}

/** The Contact cell's parts: lost contact since when, or the late report (as contactCell in the portal's format.ts). */
function contactParts(m) {
  const late = m.lateReport;
  if (late) {
    const exit = late.exitCode === null ? '' : ` (exit code ${late.exitCode})`;
    const outcome = late.state === null ? late.error ?? 'nothing left to collect' : `${late.state}${exit}, ${late.lines} late line${late.lines === 1 ? '' : 's'}`;
    return ['Late report ', timeElement(late.receivedAt), `: ${outcome}`];
  }
  if (!m.lostContactSince) return [];
  if (m.state === 'Running') return ['Lost contact since ', timeElement(m.lostContactSince)];
  return m.state === 'Failed' ? ['Lost contact at ', timeElement(m.lostContactSince), '; awaiting a late report'] : [];
}

function applyState(task) {
  setBadge(document.getElementById('task-state'), task.state);
  setTime(document.getElementById('task-started'), task.startedAt);
  setTime(document.getElementById('task-finished'), task.finishedAt);
  const errorRow = document.getElementById('task-error-row');
  document.getElementById('task-error').textContent = task.error ?? '';
  errorRow.hidden = !task.error;
  for (const m of task.machines) {
    const row = document.querySelector(`tr[data-machine-id="${CSS.escape(m.machineId)}"]`);
    if (!row) continue;
    setBadge(row.querySelector('[data-field="state"]'), m.state);
    row.querySelector('[data-field="exit-code"]').textContent = m.exitCode === null ? '—' : String(m.exitCode);
    setTime(row.querySelector('[data-field="started"]'), m.startedAt);
    setTime(row.querySelector('[data-field="finished"]'), m.finishedAt);
    row.querySelector('[data-field="error"]').textContent = m.error ?? '';
    row.querySelector('[data-field="contact"]').replaceChildren(...contactParts(m));
  }
  const final = FINAL.includes(task.state);
  if (cancelButton) cancelButton.hidden = final || Boolean(task.cancelRequestedAt);
  cancelRequested.hidden = final || !task.cancelRequestedAt;
}

function connect() {
  const source = new EventSource(`/api/tasks/${encodeURIComponent(taskId)}/log/stream`);
  source.addEventListener('open', () => (streamStatus.textContent = 'Live'));
  source.addEventListener('log', (event) => appendLine(JSON.parse(event.data)));
  source.addEventListener('state', (event) => applyState(JSON.parse(event.data)));
  source.addEventListener('end', () => {
    source.close();
    streamStatus.textContent = 'Finished';
  });
  source.addEventListener('error', () => {
    // CLOSED means the server refused the stream (signed out, task gone): no retry.
    streamStatus.textContent = source.readyState === EventSource.CLOSED ? 'Live log stopped: reload the page.' : 'Reconnecting…';
  });
}

cancelButton?.addEventListener('click', async () => {
  cancelButton.disabled = true;
  clearError(errorBox);
  try {
    applyState(await api('POST', `/api/tasks/${encodeURIComponent(taskId)}/cancel`));
  } catch (err) {
    showError(errorBox, err);
  } finally {
    cancelButton.disabled = false;
  }
});

connect();

import { FINAL_TASK_STATES } from '../../../api/contract.js';
import { ReefError } from '../../../errors.js';
import type { TaskState } from '../../store/types.js';
import { taskView } from '../../http/views.js';
import type { PageContext } from '../context.js';
import { badge, contactCell, KIND_LABELS, seg, targetSummary, time } from '../format.js';
import { html } from '../html.js';
import { layout, sendPage } from '../layout.js';
import { can } from '../../auth/roles.js';
import { machineIdsInScope, taskInScope } from '../../auth/scope.js';
import { signedIn } from './common.js';

const STATES: readonly TaskState[] = ['Queued', 'Running', 'Success', 'Failed', 'Cancelled', 'TimedOut'];
const PAGE_SIZE = 50;

/** Newest first, filtered by state, paged with ?before=. */
export async function tasksPage(ctx: PageContext): Promise<void> {
  const raw = ctx.url.searchParams.get('state') ?? '';
  const state = STATES.find((s) => s === raw);
  const before = ctx.url.searchParams.get('before') || undefined;
  const onlyMachineIds = await machineIdsInScope(ctx.deps.store, ctx.actor.scope);
  const tasks = await ctx.deps.store.listTasks({ state, limit: PAGE_SIZE, before, onlyMachineIds });
  const older = tasks.length === PAGE_SIZE ? `/tasks?${new URLSearchParams({ ...(state ? { state } : {}), before: tasks[tasks.length - 1]!.id })}` : null;

  const body = html`
    <h1>Tasks</h1>
    ${can(ctx.actor, 'tasks:write') ? html`<div class="actions"><a class="button primary" href="/tasks/new">New task</a></div>` : ''}
    <form class="filters" method="get" action="/tasks">
      <label>State
        <select name="state" id="state-filter">
          <option value="">Any state</option>
          ${STATES.map((s) => html`<option value="${s}"${s === state ? html` selected` : ''}>${s === 'TimedOut' ? 'Timed out' : s}</option>`)}
        </select>
      </label>
      <button type="submit" class="button">Filter</button>
    </form>
    ${tasks.length === 0
      ? html`<p class="muted">No ${state ? `${state} ` : ''}tasks${before ? ' before this point' : ''}.</p>`
      : html`<table class="table tasks">
          <thead><tr><th scope="col">Task</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">Target</th><th scope="col">Machines</th><th scope="col">Created</th><th scope="col">Finished</th></tr></thead>
          <tbody>${tasks.map((t) => html`<tr data-task-id="${t.id}">
            <th scope="row" data-label="Task"><a href="/tasks/${seg(t.id)}">${t.id}</a></th>
            <td data-label="Kind">${KIND_LABELS[t.kind] ?? t.kind}</td>
            <td data-label="State">${badge(t.state)}</td>
            <td data-label="Target">${targetSummary(t.target)}</td>
            <td data-label="Machines">${t.machineCount}</td>
            <td data-label="Created">${time(t.createdAt)}</td>
            <td data-label="Finished">${time(t.finishedAt, '—')}</td>
          </tr>`)}</tbody>
        </table>`}
    ${older ? html`<p><a href="${older}">Older tasks ›</a></p>` : ''}
  `;
  sendPage(ctx.res, 200, layout({ title: 'Tasks', page: 'tasks', nav: 'tasks', user: signedIn(ctx), body }));
}

/** One task: machines with states and exit codes, live per-machine logs (task.js, SSE), cancel. */
export async function taskPage(ctx: PageContext): Promise<void> {
  const found = await ctx.deps.store.getTask(ctx.params.id!);
  if (!found || !(await taskInScope(ctx.deps.store, ctx.actor.scope, found))) throw new ReefError('REEF_NOT_FOUND', `No task has id "${ctx.params.id}".`);
  const t = taskView(found);
  const final = FINAL_TASK_STATES.includes(t.state);
  const spec = t.spec as { script?: { syntax?: string; body?: string }; file?: { sha256?: string; destination?: string } };

  const body = html`
    <p class="crumbs"><a href="/tasks">Tasks</a> › ${t.id}</p>
    <h1>${t.id} <span class="muted">${KIND_LABELS[t.kind] ?? t.kind}</span></h1>
    <div class="actions">
      <span id="task-state" aria-live="polite">${badge(t.state)}</span>
      <span id="stream-status" class="muted small" aria-live="polite">${final ? 'Finished' : 'Connecting…'}</span>
      ${can(ctx.actor, 'tasks:write') ? html`<button type="button" id="cancel" class="button danger"${final || t.cancelRequestedAt ? html` hidden` : ''}>Cancel task</button>` : ''}
      <span id="cancel-requested" class="muted small"${t.cancelRequestedAt && !final ? '' : html` hidden`}>Cancellation requested…</span>
    </div>
    <div id="action-error" class="notice notice-error" role="alert" hidden></div>
    <dl class="facts">
      <div class="row"><dt>Target</dt><dd>${targetSummary(t.target)}</dd></div>
      <div class="row"><dt>Created</dt><dd>${time(t.createdAt)}</dd></div>
      <div class="row"><dt>Started</dt><dd id="task-started">${time(t.startedAt, '—')}</dd></div>
      <div class="row"><dt>Finished</dt><dd id="task-finished">${time(t.finishedAt, '—')}</dd></div>
      <div class="row"${t.error ? '' : html` hidden`} id="task-error-row"><dt>Error</dt><dd id="task-error">${t.error}</dd></div>
      ${spec.file ? html`<div class="row"><dt>File</dt><dd><code>${spec.file.sha256}</code> → <code>${spec.file.destination}</code></dd></div>` : ''}
    </dl>
    ${spec.script?.body !== undefined ? html`<details class="script"><summary>Script (${spec.script.syntax ?? 'bash'})</summary><pre><code>${spec.script.body}</code></pre></details>` : ''}
    <h2>Machines</h2>
    <table class="table task-machines">
      <thead><tr><th scope="col">Machine</th><th scope="col">State</th><th scope="col">Exit code</th><th scope="col">Started</th><th scope="col">Finished</th><th scope="col">Error</th><th scope="col">Contact</th></tr></thead>
      <tbody>${t.machines.map((m) => html`<tr data-machine-id="${m.machineId}">
        <th scope="row" data-label="Machine"><a href="/machines/${seg(m.machineId)}">${m.machineName}</a></th>
        <td data-label="State" data-field="state">${badge(m.state)}</td>
        <td data-label="Exit code" data-field="exit-code">${m.exitCode ?? '—'}</td>
        <td data-label="Started" data-field="started">${time(m.startedAt, '—')}</td>
        <td data-label="Finished" data-field="finished">${time(m.finishedAt, '—')}</td>
        <td data-label="Error" data-field="error">${m.error ?? ''}</td>
        <td data-label="Contact" data-field="contact">${contactCell(m)}</td>
      </tr>`)}</tbody>
    </table>
    <h2>Logs</h2>
    <div class="logs">
      <section class="log" data-log-for="" aria-labelledby="log-task" hidden>
        <h3 id="log-task">Task</h3>
        <pre class="log-lines" role="log" aria-live="polite"></pre>
      </section>
      ${t.machines.map((m, i) => html`<section class="log" data-log-for="${m.machineId}" aria-labelledby="log-${i}">
        <h3 id="log-${i}">${m.machineName}</h3>
        <pre class="log-lines" role="log" aria-live="polite"><span class="muted empty">No output yet.</span></pre>
      </section>`)}
    </div>
  `;
  sendPage(ctx.res, 200, layout({ title: t.id, page: 'task', nav: 'tasks', user: signedIn(ctx), scripts: ['task.js'], data: { 'task-id': t.id }, body }));
}

import { SCRIPT_SYNTAXES, type ScriptSyntax } from '../../../api/tentacle/index.js';
import type { PageContext } from '../context.js';
import { KIND_LABELS } from '../format.js';
import { html } from '../html.js';
import { layout, sendPage } from '../layout.js';
import { environmentInScope, machineInScope, workerPoolInScope } from '../../auth/scope.js';
import { signedIn } from './common.js';

const KINDS = ['run-script', 'health-check', 'push-file'] as const;
const SYNTAX_LABELS: Record<ScriptSyntax, string> = { bash: 'bash', sh: 'sh', powershell: 'PowerShell' };
type Kind = (typeof KINDS)[number];

/**
 * The new task forms. new-task.js turns a submit into POST /api/files (push-file) and
 * POST /api/tasks, then opens the task page.
 */
export async function newTaskPage(ctx: PageContext): Promise<void> {
  const { store } = ctx.deps;
  const kind: Kind = KINDS.find((k) => k === ctx.url.searchParams.get('kind')) ?? 'run-script';
  const preselected = new Set(ctx.url.searchParams.getAll('machine').map((n) => n.toLowerCase()));
  const { scope } = ctx.actor;
  // Only what the user may target; the API refuses the rest anyway.
  const [environments, pools, machines] = await Promise.all([
    store.listEnvironments().then((all) => all.filter((e) => environmentInScope(scope, e.name))),
    store.listWorkerPools().then((all) => all.filter((p) => workerPoolInScope(scope, p.name))),
    store.listMachines().then((all) => all.filter((m) => machineInScope(scope, m))),
  ]);
  const targetType = preselected.size ? 'machines' : environments.length ? 'environment' : pools.length ? 'workerPool' : 'machines';
  const radio = (value: string, label: string) =>
    html`<label class="choice"><input type="radio" name="target-type" value="${value}"${value === targetType ? html` checked` : ''}> ${label}</label>`;

  const body = html`
    <h1>New task</h1>
    <nav class="tabs" aria-label="Task kind">
      ${KINDS.map((k) => html`<a href="/tasks/new?kind=${k}"${k === kind ? html` aria-current="page"` : ''}>${KIND_LABELS[k]}</a>`)}
    </nav>
    <form id="new-task" class="form" data-kind="${kind}" novalidate>
      <fieldset>
        <legend>Run on</legend>
        <div class="choices">
          ${radio('environment', 'an environment and role')}
          ${radio('workerPool', 'a worker pool')}
          ${radio('machines', 'chosen machines')}
        </div>
        <div class="target-part" data-target="environment">
          <label>Environment
            <select name="environment">${environments.map((e) => html`<option value="${e.name}">${e.name}</option>`)}</select>
          </label>
          <label>Role <span class="muted small">(optional: all roles when empty)</span>
            <input type="text" name="role" autocomplete="off" maxlength="200">
          </label>
        </div>
        <div class="target-part" data-target="workerPool">
          <label>Worker pool
            <select name="workerPool">${pools.map((p) => html`<option value="${p.name}">${p.name}</option>`)}</select>
          </label>
        </div>
        <div class="target-part" data-target="machines">
          <p class="label">Machines</p>
          ${machines.length === 0 ? html`<p class="muted">No machines are registered.</p>` : ''}
          <div class="machine-choices">
            ${machines.map((m) => html`<label class="choice"><input type="checkbox" name="machines" value="${m.name}"${preselected.has(m.name.toLowerCase()) ? html` checked` : ''}> ${m.name}</label>`)}
          </div>
        </div>
      </fieldset>
      ${kind === 'run-script'
        ? html`<fieldset>
            <legend>Script</legend>
            <label>Syntax
              <select name="syntax">${SCRIPT_SYNTAXES.map((syntax) => html`<option value="${syntax}">${SYNTAX_LABELS[syntax]}</option>`)}</select>
            </label>
            <label>Script body
              <textarea name="body" rows="8" spellcheck="false" required></textarea>
            </label>
            <label>Timeout in seconds <span class="muted small">(optional)</span>
              <input type="number" name="timeoutSeconds" min="1" step="1" inputmode="numeric">
            </label>
          </fieldset>`
        : ''}
      ${kind === 'push-file'
        ? html`<fieldset>
            <legend>File</legend>
            <label>File to upload
              <input type="file" name="file" required>
            </label>
            <label>Destination on each machine <span class="muted small">(absolute path)</span>
              <input type="text" name="destination" required autocomplete="off" placeholder="/opt/app/package.tgz">
            </label>
            <progress id="upload-progress" max="100" value="0" hidden></progress>
            <span id="upload-status" class="muted small" aria-live="polite"></span>
          </fieldset>`
        : ''}
      <div id="form-error" class="notice notice-error" role="alert" hidden></div>
      <div class="actions"><button type="submit" class="button primary">${kind === 'run-script' ? 'Run script' : kind === 'push-file' ? 'Upload and push' : 'Run health check'}</button></div>
    </form>
  `;
  sendPage(ctx.res, 200, layout({ title: 'New task', page: 'new-task', nav: 'new-task', user: signedIn(ctx), scripts: ['new-task.js'], body }));
}

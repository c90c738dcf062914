import { describeScope, isScoped, ROLES, type Role, type Scope } from '../../../api/roles.js';
import { ROLE_SUMMARIES } from '../../auth/roles.js';
import type { Environment, WorkerPool } from '../../store/types.js';
import { html, type SafeHtml } from '../html.js';

/**
 * The role and scope fields of the API key and user forms, and how a role and scope are
 * shown in their tables. The page scripts read the fields by name (web/access.js).
 */
export function accessFields(environments: Environment[], pools: WorkerPool[]): SafeHtml {
  return html`
    <label>Role
      <select name="role">${ROLES.map((role) => html`<option value="${role}"${role === 'viewer' ? html` selected` : ''}>${role}: ${ROLE_SUMMARIES[role]}</option>`)}</select>
    </label>
    <fieldset class="scope">
      <legend>Limit to <span class="muted small">(optional; not for admin; nothing chosen: the whole server)</span></legend>
      ${environments.length ? html`<p class="label">Environments</p><div class="choices">${environments.map((e) => html`<label class="choice"><input type="checkbox" name="environments" value="${e.name}"> ${e.name}</label>`)}</div>` : ''}
      ${pools.length ? html`<p class="label">Worker pools</p><div class="choices">${pools.map((p) => html`<label class="choice"><input type="checkbox" name="workerPools" value="${p.name}"> ${p.name}</label>`)}</div>` : ''}
      ${environments.length + pools.length === 0 ? html`<p class="muted">No environments or worker pools exist yet.</p>` : ''}
    </fieldset>`;
}

export function accessCells(access: { role: Role; scope: Scope }): SafeHtml {
  return html`<td data-label="Role"><span class="tag">${access.role}</span></td>
    <td data-label="Scope">${isScoped(access.scope) ? describeScope(access.scope) : html`<span class="muted">whole server</span>`}</td>`;
}

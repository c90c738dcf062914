// The role and scope fields of the API key and user forms (src/server/portal/pages/access.ts).
import { tableCell } from './common.js';

/** { role, environments, workerPools } from a form with those fields; empty lists are left out. */
export function readAccess(form) {
  const checked = (name) => [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((input) => input.value);
  const access = { role: form.elements.role.value };
  const environments = checked('environments');
  const workerPools = checked('workerPools');
  if (environments.length) access.environments = environments;
  if (workerPools.length) access.workerPools = workerPools;
  return access;
}

/** The Role and Scope cells of a table row, as the server renders them. */
export function accessCells({ role, scope }) {
  const tag = document.createElement('span');
  tag.className = 'tag';
  tag.textContent = role;
  const roleCell = tableCell('Role', tag);
  const scopeCell = tableCell('Scope');
  const parts = [];
  if (scope.environments.length) parts.push(`${scope.environments.length === 1 ? 'environment' : 'environments'} ${scope.environments.join(', ')}`);
  if (scope.workerPools.length) parts.push(`${scope.workerPools.length === 1 ? 'worker pool' : 'worker pools'} ${scope.workerPools.join(', ')}`);
  if (parts.length) scopeCell.textContent = parts.join(' and ');
  else {
    const whole = document.createElement('span');
    whole.className = 'muted';
    whole.textContent = 'whole server';
    scopeCell.append(whole);
  }
  return [roleCell, scopeCell];
}

// Add machine page: makes a join token with its install command (POST /api/tokens with
// `install`) and shows the line, with a Copy button where the clipboard works.
import { api, clearError, showError } from './common.js';

const form = document.getElementById('add-machine');
const errorBox = document.getElementById('form-error');
const result = document.getElementById('install');

function kind() {
  return form.elements.kind.value;
}

function showKind() {
  for (const part of form.querySelectorAll('.kind-part')) part.hidden = part.dataset.kind !== kind();
}
for (const radio of form.elements.kind) radio.addEventListener('change', showKind);
showKind();

const value = (name) => form.elements[name].value.trim();

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearError(errorBox);
  const scope =
    kind() === 'worker'
      ? { workerPools: [value('workerPool')].filter(Boolean) }
      : { environments: [value('environment')].filter(Boolean), roles: [value('role')].filter(Boolean) };
  if (kind() === 'worker' && !scope.workerPools.length) return showError(errorBox, new Error('Name the worker pool the machine joins.'));
  if (kind() === 'target' && (!scope.environments.length || !scope.roles.length)) return showError(errorBox, new Error('Name the environment and the role of the machine.'));
  const install = { carrier: value('carrier') };
  if (value('commsAddress')) install.commsAddress = value('commsAddress');
  if (value('proxy')) install.proxy = value('proxy');
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    const created = await api('POST', '/api/tokens', { ...scope, uses: Number(value('uses')), expiresInSeconds: Number(value('expiresInSeconds')), install });
    document.getElementById('install-command').textContent = created.installCommand;
    document.getElementById('install-token-id').textContent = created.id;
    document.getElementById('install-token-scope').textContent =
      created.kind === 'worker' ? `workers in ${created.workerPools.join(', ')}` : `targets in ${created.environments.join(', ')} as ${created.roles.join(', ')}`;
    document.getElementById('install-token-expires').textContent = new Date(created.expiresAt).toLocaleString();
    result.hidden = false;
    result.scrollIntoView({ block: 'nearest' });
  } catch (err) {
    showError(errorBox, err);
  } finally {
    button.disabled = false;
  }
});

const copy = result.querySelector('button.copy');
const status = result.querySelector('.copy-status');
if (navigator.clipboard) {
  copy.hidden = false;
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(document.getElementById('install-command').textContent);
      status.textContent = 'Copied.';
    } catch (err) {
      status.textContent = `Not copied (${err.message}); select the command instead.`;
    }
  });
}

// API keys page: create (the key is shown once) and revoke.
import { accessCells, readAccess } from './access.js';
import { api, badge, clearError, showError, tableCell, timeElement } from './common.js';

const form = document.getElementById('create-key');
const errorBox = document.getElementById('action-error');
const tbody = document.getElementById('keys');

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearError(errorBox);
  const name = form.elements.name.value.trim();
  if (!name) return showError(errorBox, new Error('Give the new key a name.'));
  try {
    const created = await api('POST', '/api/apikeys', { name, ...readAccess(form) });
    document.getElementById('new-key-name').textContent = created.name;
    document.getElementById('new-key-value').textContent = created.key;
    document.getElementById('new-key').hidden = false;
    form.reset();
    const row = document.createElement('tr');
    row.dataset.keyId = created.id;
    const th = document.createElement('th');
    th.scope = 'row';
    th.dataset.label = 'Name';
    th.textContent = created.name;
    const prefix = document.createElement('code');
    prefix.textContent = `${created.key.slice(0, 12)}…`;
    const state = tableCell('State', badge('active'));
    state.dataset.field = 'state';
    row.append(th, ...accessCells(created), tableCell('Key starts', prefix), tableCell('Created', timeElement(new Date().toISOString())), tableCell('Last used', timeElement(null, 'never')), state, tableCell('Actions', revokeButton(created.id, created.name)));
    tbody.append(row);
  } catch (err) {
    showError(errorBox, err);
  }
});

function revokeButton(id, name) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'button danger small revoke';
  button.dataset.keyId = id;
  button.dataset.keyName = name;
  button.textContent = 'Revoke';
  return button;
}

tbody.addEventListener('click', async (event) => {
  const button = event.target.closest('button.revoke');
  if (!button) return;
  const { keyId, keyName } = button.dataset;
  if (!confirm(`Revoke the API key "${keyName}"? Anything using it stops working at once.`)) return;
  clearError(errorBox);
  button.disabled = true;
  try {
    await api('DELETE', `/api/apikeys/${encodeURIComponent(keyId)}`);
    const row = button.closest('tr');
    row.querySelector('[data-field="state"]').replaceChildren(badge('revoked'));
    button.remove();
  } catch (err) {
    showError(errorBox, err);
    button.disabled = false;
  }
});

// Users page: create a user (its password is shown once), reset a password, disable, enable.
import { accessCells, readAccess } from './access.js';
import { api, badge, clearError, showError, tableCell, timeElement } from './common.js';

const form = document.getElementById('create-user');
const errorBox = document.getElementById('action-error');
const tbody = document.getElementById('users');

function showPassword(username, password) {
  document.getElementById('new-password-user').textContent = username;
  document.getElementById('new-password-value').textContent = password;
  document.getElementById('new-password').hidden = false;
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearError(errorBox);
  const username = form.elements.username.value.trim();
  if (!username) return showError(errorBox, new Error('Give the new user a username.'));
  try {
    const { user, password } = await api('POST', '/api/users', { username, ...readAccess(form) });
    showPassword(user.username, password);
    form.reset();
    tbody.append(userRow(user));
  } catch (err) {
    showError(errorBox, err);
  }
});

function actionButton(className, text) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = `button small ${className}`;
  button.textContent = text;
  return button;
}

/** A row as the server renders it (pages/users.ts). */
function userRow(user) {
  const row = document.createElement('tr');
  row.dataset.userId = user.id;
  row.dataset.username = user.username;
  const th = document.createElement('th');
  th.scope = 'row';
  th.dataset.label = 'Username';
  th.textContent = user.username;
  const state = tableCell('State', badge('active'));
  state.dataset.field = 'state';
  row.append(th, ...accessCells(user), tableCell('Created', timeElement(user.createdAt)), state,
    tableCell('Actions', actionButton('reset-password', 'Reset password'), ' ', actionButton('danger disable', 'Disable')));
  return row;
}

tbody.addEventListener('click', async (event) => {
  const button = event.target.closest('button');
  if (!button) return;
  const row = button.closest('tr');
  const { userId, username } = row.dataset;
  const path = `/api/users/${encodeURIComponent(userId)}`;
  clearError(errorBox);
  try {
    if (button.classList.contains('reset-password')) {
      if (!confirm(`Reset the password of "${username}"? Their sessions end and the old password stops working.`)) return;
      button.disabled = true;
      const { password } = await api('POST', `${path}/password`, {});
      showPassword(username, password);
    } else if (button.classList.contains('disable')) {
      if (!confirm(`Disable "${username}"? They are signed out at once and cannot sign in until enabled.`)) return;
      button.disabled = true;
      await api('POST', `${path}/disable`);
      row.querySelector('[data-field="state"]').replaceChildren(badge('disabled'));
      button.className = 'button small enable';
      button.textContent = 'Enable';
    } else if (button.classList.contains('enable')) {
      button.disabled = true;
      await api('POST', `${path}/enable`);
      row.querySelector('[data-field="state"]').replaceChildren(badge('active'));
      button.className = 'button small danger disable';
      button.textContent = 'Disable';
    }
  } catch (err) {
    showError(errorBox, err);
  } finally {
    button.disabled = false;
  }
});

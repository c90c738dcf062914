// Account page: change your own password (the current one is asked for again).
import { api, clearError, showError } from './common.js';

const form = document.getElementById('change-password');
const errorBox = document.getElementById('action-error');
const done = document.getElementById('password-changed');

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearError(errorBox);
  done.hidden = true;
  try {
    await api('POST', '/api/account/password', { currentPassword: form.elements.currentPassword.value, newPassword: form.elements.newPassword.value });
    form.reset();
    done.hidden = false;
  } catch (err) {
    showError(errorBox, err);
  }
});

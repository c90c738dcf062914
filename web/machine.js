// Machine page: run a health check, remove the machine after a confirmation.
import { api, clearError, showError } from './common.js';

const { machineId, machineName } = document.body.dataset;
const errorBox = document.getElementById('action-error');
const dialog = document.getElementById('remove-dialog');

// Each button is there only when the user's role may use it.
document.getElementById('health-check')?.addEventListener('click', async (event) => {
  const button = event.currentTarget;
  button.disabled = true;
  clearError(errorBox);
  try {
    const task = await api('POST', '/api/tasks', { kind: 'health-check', target: { machines: [machineName] } });
    location.assign(`/tasks/${encodeURIComponent(task.id)}`);
  } catch (err) {
    showError(errorBox, err);
    button.disabled = false;
  }
});

document.getElementById('remove-open')?.addEventListener('click', () => {
  clearError(errorBox);
  dialog.showModal();
});

document.getElementById('remove-confirm')?.addEventListener('click', async (event) => {
  const button = event.currentTarget;
  button.disabled = true;
  try {
    await api('DELETE', `/api/machines/${encodeURIComponent(machineId)}`);
    location.assign(`/?${new URLSearchParams({ removed: machineName })}`);
  } catch (err) {
    dialog.close();
    showError(errorBox, err);
    button.disabled = false;
  }
});

// New task forms: build a CreateTaskRequest, upload the file first for push-file
// (POST /api/files, with progress), then POST /api/tasks and open the task page.
import { api, ApiError, clearError, csrfToken, readResponse, showError } from './common.js';

const form = document.getElementById('new-task');
const errorBox = document.getElementById('form-error');
const kind = form.dataset.kind;

function showTargetPart() {
  const chosen = form.querySelector('input[name="target-type"]:checked')?.value;
  for (const part of form.querySelectorAll('.target-part')) part.hidden = part.dataset.target !== chosen;
}
for (const radio of form.querySelectorAll('input[name="target-type"]')) radio.addEventListener('change', showTargetPart);
showTargetPart();

class FormProblem extends Error {}

function target() {
  const type = form.querySelector('input[name="target-type"]:checked')?.value;
  if (type === 'environment') {
    const environment = form.elements.environment.value;
    if (!environment) throw new FormProblem('Choose an environment (none exists yet).');
    const role = form.elements.role.value.trim();
    return role ? { environment, role } : { environment };
  }
  if (type === 'workerPool') {
    const workerPool = form.elements.workerPool.value;
    if (!workerPool) throw new FormProblem('Choose a worker pool (none exists yet).');
    return { workerPool };
  }
  const machines = [...form.querySelectorAll('input[name="machines"]:checked')].map((box) => box.value);
  if (machines.length === 0) throw new FormProblem('Choose at least one machine.');
  return { machines };
}

function upload(file) {
  const progress = document.getElementById('upload-progress');
  const status = document.getElementById('upload-status');
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/files');
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.setRequestHeader('x-reef-csrf', csrfToken);
    progress.hidden = false;
    xhr.upload.addEventListener('progress', (event) => {
      if (!event.lengthComputable) return;
      progress.value = Math.round((100 * event.loaded) / event.total);
      status.textContent = `Uploading: ${progress.value} %`;
    });
    xhr.addEventListener('load', () => {
      try {
        const stored = readResponse(xhr.status, xhr.responseText);
        status.textContent = `Uploaded ${stored.size} bytes.`;
        resolve(stored);
      } catch (err) {
        reject(err);
      }
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'NETWORK', 'The upload was cut off; try again.')));
    xhr.send(file);
  });
}

async function request() {
  const base = { kind, target: target() };
  if (kind === 'run-script') {
    const body = form.elements.body.value;
    if (!body.trim()) throw new FormProblem('Write the script to run.');
    const timeout = form.elements.timeoutSeconds.value.trim();
    return { ...base, script: { syntax: form.elements.syntax.value, body }, ...(timeout ? { timeoutSeconds: Number(timeout) } : {}) };
  }
  if (kind === 'push-file') {
    const file = form.elements.file.files[0];
    if (!file) throw new FormProblem('Choose a file to upload.');
    const destination = form.elements.destination.value.trim();
    if (!destination) throw new FormProblem('Give the destination path on the machines.');
    const stored = await upload(file);
    return { ...base, file: { sha256: stored.sha256, destination } };
  }
  return base;
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const submit = form.querySelector('button[type="submit"]');
  submit.disabled = true;
  clearError(errorBox);
  try {
    const task = await api('POST', '/api/tasks', await request());
    location.assign(`/tasks/${encodeURIComponent(task.id)}`);
  } catch (err) {
    showError(errorBox, err);
    submit.disabled = false;
  }
});

// Shared by every portal page: the CSRF-carrying API client, status badges, relative times.
// Everything from the server is put into the page with textContent, never as markup.

const meta = document.querySelector('meta[name="reef-csrf"]');
export const csrfToken = meta ? meta.getAttribute('content') ?? '' : '';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the REST API with the session cookie and the CSRF header; JSON in, JSON out. */
export async function api(method, path, body) {
  const headers = { accept: 'application/json', 'x-reef-csrf': csrfToken };
  const init = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, 'NETWORK', `The server could not be reached (${err.message}). Check the connection and try again.`);
  }
  return readResponse(res.status, await res.text());
}

export function readResponse(status, text) {
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (status >= 200 && status < 300) return data;
  if (status === 401) throw new ApiError(status, 'SIGNED_OUT', 'Your session has ended. Reload the page to sign in again.');
  const error = data && data.error ? data.error : null;
  throw new ApiError(status, error ? error.code : `HTTP_${status}`, error ? error.message : `The server answered HTTP ${status}.`);
}

/** A table cell labelled for the narrow-screen layout (`data-label`), holding `content`. */
export function tableCell(label, ...content) {
  const td = document.createElement('td');
  td.dataset.label = label;
  td.append(...content);
  return td;
}

export function showError(element, err) {
  if (!element) return;
  element.textContent = `✖ ${err instanceof Error ? err.message : String(err)}`;
  element.hidden = false;
}

export function clearError(element) {
  if (!element) return;
  element.textContent = '';
  element.hidden = true;
}

const STATES = {
  Queued: ['◷', 'Queued', 'idle'],
  Pending: ['◷', 'Pending', 'idle'],
  Running: ['▶', 'Running', 'busy'],
  Success: ['✔', 'Success', 'ok'],
  Failed: ['✖', 'Failed', 'bad'],
  Cancelled: ['⊘', 'Cancelled', 'warn'],
  TimedOut: ['⌛', 'Timed out', 'bad'],
  online: ['●', 'Online', 'ok'],
  offline: ['○', 'Offline', 'idle'],
  healthy: ['✔', 'Healthy', 'ok'],
  unhealthy: ['✖', 'Unhealthy', 'bad'],
  unknown: ['?', 'Unknown', 'idle'],
  active: ['✔', 'Active', 'ok'],
  revoked: ['⊘', 'Revoked', 'warn'],
  disabled: ['⊘', 'Disabled', 'warn'],
};

/** The same badge the server renders: an icon and a word, colour only as a second cue. */
export function badge(state) {
  const [icon, label, tone] = STATES[state] ?? ['•', state, 'idle'];
  const span = document.createElement('span');
  span.className = `badge tone-${tone}`;
  span.dataset.state = state;
  const i = document.createElement('span');
  i.className = 'icon';
  i.setAttribute('aria-hidden', 'true');
  i.textContent = icon;
  span.append(i, ` ${label}`);
  return span;
}

export function setBadge(container, state) {
  if (!container) return;
  const current = container.querySelector('.badge');
  if (current && current.dataset.state === state) return;
  container.replaceChildren(badge(state));
}

/** A <time> element in the server's format; refreshRelativeTimes adds the age. */
export function timeElement(iso, empty = '—') {
  if (!iso) {
    const span = document.createElement('span');
    span.className = 'muted';
    span.textContent = empty;
    return span;
  }
  const el = document.createElement('time');
  el.dateTime = iso;
  el.title = iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  el.textContent = el.title;
  refreshOne(el);
  return el;
}

function age(ms) {
  const s = Math.round(ms / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return null;
}

function refreshOne(el) {
  const at = Date.parse(el.dateTime);
  if (Number.isNaN(at)) return;
  const ago = Date.now() >= at ? age(Date.now() - at) : null;
  el.textContent = ago ?? el.title;
}

export function refreshRelativeTimes(root = document) {
  for (const el of root.querySelectorAll('time[datetime]')) refreshOne(el);
}

document.addEventListener('DOMContentLoaded', () => {
  refreshRelativeTimes();
  setInterval(refreshRelativeTimes, 10_000);
});

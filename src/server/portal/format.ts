import type { TaskMachineView } from '../../api/contract.js';
import { html, type SafeHtml } from './html.js';

/**
 * Small renderers shared by the pages. Every status carries an icon and a word, so it
 * reads the same without colour; the colour class is only a second cue.
 */

interface Badge {
  icon: string;
  label: string;
  tone: 'ok' | 'bad' | 'busy' | 'idle' | 'warn';
}

const STATES: Readonly<Record<string, Badge>> = {
  Queued: { icon: '◷', label: 'Queued', tone: 'idle' },
  Pending: { icon: '◷', label: 'Pending', tone: 'idle' },
  Running: { icon: '▶', label: 'Running', tone: 'busy' },
  Success: { icon: '✔', label: 'Success', tone: 'ok' },
  Failed: { icon: '✖', label: 'Failed', tone: 'bad' },
  Cancelled: { icon: '⊘', label: 'Cancelled', tone: 'warn' },
  TimedOut: { icon: '⌛', label: 'Timed out', tone: 'bad' },
  online: { icon: '●', label: 'Online', tone: 'ok' },
  offline: { icon: '○', label: 'Offline', tone: 'idle' },
  healthy: { icon: '✔', label: 'Healthy', tone: 'ok' },
  unhealthy: { icon: '✖', label: 'Unhealthy', tone: 'bad' },
  unknown: { icon: '?', label: 'Unknown', tone: 'idle' },
  active: { icon: '✔', label: 'Active', tone: 'ok' },
  revoked: { icon: '⊘', label: 'Revoked', tone: 'warn' },
  disabled: { icon: '⊘', label: 'Disabled', tone: 'warn' },
  down: { icon: '✖', label: 'Down', tone: 'bad' },
  stopped: { icon: '■', label: 'Stopped', tone: 'idle' },
};

/** A status badge; `data-state` lets the page's script update it in place. */
export function badge(state: string): SafeHtml {
  const b = STATES[state] ?? { icon: '•', label: state, tone: 'idle' as const };
  return html`<span class="badge tone-${b.tone}" data-state="${state}"><span class="icon" aria-hidden="true">${b.icon}</span> ${b.label}</span>`;
}

/** What each carrier means, for the operator; the raw name is shown beside it. */
export function carrierDescription(carrier: string, commsPort: number): string {
  const [base, ...extras] = carrier.split('+');
  const viaProxy = extras.includes('proxy') ? ', through an HTTP proxy' : '';
  switch (base) {
    case 'tcp':
      return `polling, TLS to comms port ${commsPort}${viaProxy}`;
    case 'sni':
      return `polling over 443, routed by SNI${viaProxy}`;
    case 'alpn':
      return `polling over 443, routed by ALPN${viaProxy}`;
    case 'websocket':
      return `polling over a secure WebSocket${viaProxy}`;
    case 'proxy':
      return 'polling through an HTTP proxy';
    case 'listening':
      return 'listening: the server dials the Tentacle';
    default:
      return `${carrier}${viaProxy}`;
  }
}

export function carrierCell(carriers: string[], commsPort: number): SafeHtml {
  if (carriers.length === 0) return html`<span class="muted">none yet</span>`;
  return html`${carriers.map(
    (c, i) => html`${i > 0 ? ', ' : ''}<span class="carrier" title="${carrierDescription(c, commsPort)}"><code>${c}</code> <span class="muted small">${carrierDescription(c, commsPort)}</span></span>`,
  )}`;
}

/** `2024-05-01 12:00:05 UTC` in a <time> the page's script turns into a relative age. */
export function time(at: string | null, empty = 'never'): SafeHtml {
  if (!at) return html`<span class="muted">${empty}</span>`;
  const shown = at.replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC');
  return html`<time datetime="${at}" title="${shown}">${shown}</time>`;
}

/** A machine run's contact with its Tentacle, for the Contact cell (web/task.js: contactParts, live). */
export function contactCell(m: TaskMachineView): SafeHtml | string {
  const late = m.lateReport;
  if (late) {
    const exit = late.exitCode === null ? '' : ` (exit code ${late.exitCode})`;
    const outcome = late.state === null ? (late.error ?? 'nothing left to collect') : `${late.state}${exit}, ${late.lines} late line${late.lines === 1 ? '' : 's'}`;
    return html`Late report ${time(late.receivedAt)}: ${outcome}`;
  }
  if (!m.lostContactSince) return '';
  if (m.state === 'Running') return html`Lost contact since ${time(m.lostContactSince)}`;
  return m.state === 'Failed' ? html`Lost contact at ${time(m.lostContactSince)}; awaiting a late report` : '';
}

/** How a task chose its machines, in words. */
export function targetSummary(target: Record<string, unknown>): string {
  if (typeof target.environment === 'string') {
    return typeof target.role === 'string' ? `environment ${target.environment}, role ${target.role}` : `environment ${target.environment}`;
  }
  if (typeof target.workerPool === 'string') return `worker pool ${target.workerPool}`;
  if (Array.isArray(target.machines)) return `machines ${target.machines.map(String).join(', ')}`;
  return JSON.stringify(target);
}

export const KIND_LABELS: Readonly<Record<string, string>> = {
  'run-script': 'Run a script',
  'push-file': 'Push a file',
  'health-check': 'Health check',
  'rotate-machine-certificate': 'Rotate Tentacle certificates',
};

/** A path segment for links built from names and ids. */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

/** Names of the fields a health check records (tasks/kinds/health-check.ts); others are spelled out from their keys. */
const DETAIL_LABELS: Readonly<Record<string, string>> = {
  roundTripMs: 'Round trip',
  tentacleVersion: 'Tentacle version',
  nodeVersion: 'Node.js version',
  hostname: 'Host name',
  os: 'OS',
  time: 'Tentacle clock',
};
/** Keys whose fields are shown without their own name in front (the check's capabilities are its main content). */
const FLATTENED = new Set(['capabilities']);
const MAX_DETAIL_ROWS = 60;
const MAX_DETAIL_CHARS = 400;

/**
 * A health check's details (any JSON object) as a two-column table: nested objects become
 * rows labelled with their path, lists are joined, times in milliseconds get their unit.
 * Every key and value is text put through the escaping template, never markup.
 */
export function detailsTable(details: Record<string, unknown> | null): SafeHtml {
  const rows: Array<[string, string]> = [];
  const add = (label: string, value: unknown, key: string): void => {
    if (rows.length >= MAX_DETAIL_ROWS) return;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) add(FLATTENED.has(k) ? label : label ? `${label} › ${labelOf(k)}` : labelOf(k), v, k);
      return;
    }
    rows.push([label, detailValue(value, key)]);
  };
  add('', details ?? {}, '');
  if (rows.length === 0) return html`<span class="muted">none</span>`;
  return html`<table class="kv"><tbody>${rows.map(([label, value]) => html`<tr><th scope="row">${label}</th><td>${value}</td></tr>`)}</tbody></table>`;
}

function labelOf(key: string): string {
  if (DETAIL_LABELS[key]) return DETAIL_LABELS[key]!;
  const words = key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/[_-]+/g, ' ').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function detailValue(value: unknown, key: string): string {
  let text: string;
  if (value === null || value === undefined) text = '—';
  else if (typeof value === 'number' && /Ms$/.test(key)) text = `${Number(value.toFixed(1))} ms`;
  else if (Array.isArray(value)) text = value.map((v) => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v))).join(', ');
  else text = String(value);
  return text.length > MAX_DETAIL_CHARS ? `${text.slice(0, MAX_DETAIL_CHARS)}…` : text;
}

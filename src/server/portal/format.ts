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
};

/** A path segment for links built from names and ids. */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

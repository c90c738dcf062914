// Keeps the dashboard's live columns (status, last seen, carrier, version and upgrade available) current.
import { api, setBadge, timeElement } from './common.js';

const REFRESH_MS = 5000;
const commsPort = document.body.dataset.commsPort ?? '10943';

function describe(carrier) {
  const [base, ...extras] = carrier.split('+');
  const via = extras.includes('proxy') ? ', through an HTTP proxy' : '';
  switch (base) {
    case 'tcp': return `polling, TLS to comms port ${commsPort}${via}`;
    case 'sni': return `polling over 443, routed by SNI${via}`;
    case 'alpn': return `polling over 443, routed by ALPN${via}`;
    case 'websocket': return `polling over a secure WebSocket${via}`;
    case 'proxy': return 'polling through an HTTP proxy';
    case 'listening': return 'listening: the server dials the Tentacle';
    default: return `${carrier}${via}`;
  }
}

function carrierNodes(machine) {
  const carriers = machine.connections.length ? [...new Set(machine.connections.map((c) => c.carrier))] : machine.carrier ? [machine.carrier] : [];
  if (carriers.length === 0) {
    const none = document.createElement('span');
    none.className = 'muted';
    none.textContent = 'none yet';
    return [none];
  }
  const nodes = [];
  carriers.forEach((c, i) => {
    if (i > 0) nodes.push(', ');
    const span = document.createElement('span');
    span.className = 'carrier';
    span.title = describe(c);
    const code = document.createElement('code');
    code.textContent = c;
    const note = document.createElement('span');
    note.className = 'muted small';
    note.textContent = describe(c);
    span.append(code, ' ', note);
    nodes.push(span);
  });
  if (!machine.online && machine.carrier) {
    const last = document.createElement('span');
    last.className = 'muted small';
    last.textContent = '(last)';
    nodes.push(' ', last);
  }
  return nodes;
}

/** As the server renders it (pages/dashboard.ts, versionCell()): the version, and "upgrade available" with the newer one. */
function versionNodes(machine) {
  if (!machine.upgradeAvailable) return [machine.tentacleVersion];
  const tag = Object.assign(document.createElement('span'), {
    className: 'tag upgrade-available',
    title: 'reef machines upgrade installs it',
    textContent: `upgrade available: ${machine.upgradeAvailable}`,
  });
  return [machine.tentacleVersion, ' ', tag];
}

async function refresh() {
  let machines;
  try {
    machines = (await api('GET', '/api/machines')).items;
  } catch {
    return; // a missed refresh is harmless; the next one tries again
  }
  for (const m of machines) {
    for (const row of document.querySelectorAll(`tr[data-machine-id="${CSS.escape(m.id)}"]`)) {
      setBadge(row.querySelector('[data-field="status"]'), m.online ? 'online' : 'offline');
      const seen = row.querySelector('[data-field="last-seen"]');
      // As the server renders it (pages/dashboard.ts, seen()): since when it is connected, else when last seen.
      if (seen) seen.replaceChildren(...(m.online && m.connectedSince ? ['connected ', timeElement(m.connectedSince)] : [timeElement(m.lastSeenAt, 'never')]));
      const carrier = row.querySelector('[data-field="carrier"]');
      if (carrier) carrier.replaceChildren(...carrierNodes(m));
      const version = row.querySelector('[data-field="version"]');
      if (version && m.tentacleVersion) version.replaceChildren(...versionNodes(m));
    }
  }
  const summary = document.getElementById('summary');
  if (summary) {
    const online = machines.filter((m) => m.online).length;
    const strong = (n) => Object.assign(document.createElement('strong'), { textContent: String(n) });
    summary.replaceChildren(`${machines.length} machine${machines.length === 1 ? '' : 's'}: `, strong(online), ' online, ', strong(machines.length - online), ' offline.');
  }
}

setInterval(refresh, REFRESH_MS);

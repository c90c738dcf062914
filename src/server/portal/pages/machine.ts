import { ReefError } from '../../../errors.js';
import { machineView, taskMachineView } from '../../http/views.js';
import type { PageContext } from '../context.js';
import { badge, carrierCell, contactCell, detailsTable, seg, time } from '../format.js';
import { html, type HtmlValue } from '../html.js';
import { layout, sendPage } from '../layout.js';
import { can } from '../../auth/roles.js';
import { machineInScope } from '../../auth/scope.js';
import { signedIn } from './common.js';
import { currentCarriers, versionCell } from './dashboard.js';

/** One machine: identity, connection, health history; health check and removal via machine.js. */
export async function machinePage(ctx: PageContext): Promise<void> {
  const { store, comms, info } = ctx.deps;
  const found = await store.getMachine(ctx.params.idOrName!);
  // Outside the user's scope reads as missing, as in the API.
  if (!found || !machineInScope(ctx.actor.scope, found)) throw new ReefError('REEF_NOT_FOUND', `No machine has the id or name "${ctx.params.idOrName}". It may have been removed.`);
  const m = machineView(found, comms, await ctx.deps.links(), (await ctx.deps.releases?.()) ?? []);
  const health = await store.listHealth(m.id, 20);
  const lost = (await store.listLostContact(m.id)).map((run) => ({ taskId: run.taskId, ...taskMachineView(run) }));
  const row = (label: string, value: HtmlValue) => html`<div class="row"><dt>${label}</dt><dd>${value}</dd></div>`;
  const list = (items: string[]) => (items.length ? items.map((i) => html`<span class="tag">${i}</span> `) : html`<span class="muted">none</span>`);

  const body = html`
    <p class="crumbs"><a href="/">Dashboard</a> › Machine</p>
    <h1>${m.name}</h1>
    <div class="actions">
      ${can(ctx.actor, 'tasks:write') ? html`<button type="button" id="health-check" class="button">Run a health check</button>` : ''}
      ${can(ctx.actor, 'machines:deregister') ? html`<button type="button" id="remove-open" class="button danger">Remove machine…</button>` : ''}
    </div>
    <div id="action-error" class="notice notice-error" role="alert" hidden></div>
    <dl class="facts">
      ${row('Status', html`${badge(m.online ? 'online' : 'offline')}${m.online ? html` <span class="muted small">${m.connections.length} connection${m.connections.length === 1 ? '' : 's'}</span>` : ''}`)}
      ${m.online && m.connectedSince ? row('Connected since', time(m.connectedSince)) : row('Last seen', time(m.lastSeenAt))}
      ${row('Kind', m.kind === 'target' ? 'Deployment target' : 'Worker')}
      ${row('Comms style', m.commsStyle === 'polling' ? 'Polling' : 'Listening')}
      ${m.endpoint ? row('Endpoint', html`<code>${m.endpoint.host}:${m.endpoint.port}</code>`) : ''}
      ${row('Carrier', carrierCell(currentCarriers(m), info.commsPort))}
      ${m.connections.length ? row('Connected from', m.connections.map((c) => html`<code>${c.remoteAddress}</code> since ${time(c.connectedAt)} `)) : ''}
      ${row('Thumbprint', html`<code class="thumbprint">${m.thumbprint}</code>`)}
      ${row('Tentacle version', versionCell(m))}
      ${m.kind === 'target' ? row('Environments', list(m.environments)) : row('Worker pools', list(m.workerPools))}
      ${m.kind === 'target' ? row('Roles', list(m.roles)) : ''}
      ${row('Health', html`${badge(m.lastHealth)} ${m.lastHealthAt ? html`<span class="muted small">checked ${time(m.lastHealthAt)}</span>` : ''}`)}
      ${row('Registered', time(m.createdAt))}
    </dl>
    ${lost.length
      ? html`<h2>Lost contact</h2>
          <p class="muted">Scripts this machine ran when the server lost contact with its Tentacle. They are collected when it comes back.</p>
          <ul class="lost-contact">${lost.map((run) => html`<li><a href="/tasks/${seg(run.taskId)}">${run.taskId}</a> ${badge(run.state)} ${contactCell(run)}</li>`)}</ul>`
      : ''}
    <h2>Health history</h2>
    ${health.length === 0
      ? html`<p class="muted">No health checks yet.</p>`
      : html`<table class="table">
          <thead><tr><th scope="col">When</th><th scope="col">Result</th><th scope="col">Details</th></tr></thead>
          <tbody>${health.map((h) => html`<tr>
            <td data-label="When">${time(h.at)}</td>
            <td data-label="Result">${badge(h.ok ? 'healthy' : 'unhealthy')}</td>
            <td data-label="Details" class="details">${detailsTable(h.details)}</td>
          </tr>`)}</tbody>
        </table>`}
    ${can(ctx.actor, 'machines:deregister')
      ? html`<dialog id="remove-dialog" aria-labelledby="remove-title">
      <form method="dialog">
        <h2 id="remove-title">Remove ${m.name}?</h2>
        <p>Its live connections are closed at once and its Tentacle is refused when it reconnects. Task history stays. To bring it back, register the Tentacle again.</p>
        <div class="actions">
          <button type="button" id="remove-confirm" class="button danger">Remove ${m.name}</button>
          <button type="submit" value="cancel" class="button">Keep it</button>
        </div>
      </form>
    </dialog>`
      : ''}
  `;
  sendPage(ctx.res, 200, layout({
    title: m.name,
    page: 'machine',
    nav: 'dashboard',
    user: signedIn(ctx),
    scripts: ['machine.js'],
    data: { 'machine-id': m.id, 'machine-name': m.name },
    body,
  }));
}

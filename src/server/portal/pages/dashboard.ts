import type { MachineView } from '../../../api/contract.js';
import { machineView } from '../../http/views.js';
import type { PageContext } from '../context.js';
import { badge, carrierCell, seg, time } from '../format.js';
import { html, type SafeHtml } from '../html.js';
import { layout, notice, sendPage } from '../layout.js';
import { describeScope, isScoped } from '../../../api/roles.js';
import { can, ROLE_SUMMARIES } from '../../auth/roles.js';
import { environmentInScope, machineInScope, workerPoolInScope } from '../../auth/scope.js';
import { signedIn } from './common.js';

/** Machines grouped by environment and by worker pool; dashboard.js refreshes the live columns. */
export async function dashboardPage(ctx: PageContext): Promise<void> {
  const { store, comms, info } = ctx.deps;
  const { scope } = ctx.actor;
  if (!can(ctx.actor, 'machines:read')) return roleHome(ctx);
  const links = await ctx.deps.links();
  // A scoped user sees only their machines and groups (auth/scope.ts).
  const releases = (await ctx.deps.releases?.()) ?? [];
  const machines = (await store.listMachines()).filter((m) => machineInScope(scope, m)).map((m) => machineView(m, comms, links, releases));
  const environments = (await store.listEnvironments()).filter((e) => environmentInScope(scope, e.name));
  const pools = (await store.listWorkerPools()).filter((p) => workerPoolInScope(scope, p.name));
  const online = machines.filter((m) => m.online).length;
  const removed = ctx.url.searchParams.get('removed');
  const has = (list: string[], name: string) => list.some((n) => n.toLowerCase() === name.toLowerCase());

  const section = (title: string, heading: string, members: MachineView[], showRoles: boolean): SafeHtml => html`
    <section class="group" aria-labelledby="${heading}">
      <h3 id="${heading}">${title} <span class="count">(${members.length})</span></h3>
      ${members.length === 0 ? html`<p class="muted">No machines.</p>` : machineTable(members, info.commsPort, showRoles)}
    </section>`;

  const body = html`
    <h1>Dashboard</h1>
    ${removed ? notice('info', html`Machine <strong>${removed}</strong> was removed.`) : ''}
    <p class="summary" id="summary">${machines.length} machine${machines.length === 1 ? '' : 's'}: <strong>${online}</strong> online, <strong>${machines.length - online}</strong> offline.</p>
    <h2>Deployment targets by environment</h2>
    ${environments.length === 0 ? html`<p class="muted">No environments yet. Register a Tentacle with <code>tentacle register-with --environment ...</code>.</p>` : ''}
    ${environments.map((env, i) => section(env.name, `env-${i}`, machines.filter((m) => m.kind === 'target' && has(m.environments, env.name)), true))}
    <h2>Workers by worker pool</h2>
    ${pools.length === 0 ? html`<p class="muted">No worker pools yet. Register a worker with <code>tentacle register-worker --workerpool ...</code>.</p>` : ''}
    ${pools.map((pool, i) => section(pool.name, `pool-${i}`, machines.filter((m) => m.kind === 'worker' && has(m.workerPools, pool.name)), false))}
  `;
  sendPage(ctx.res, 200, layout({ title: 'Dashboard', page: 'dashboard', nav: 'dashboard', user: signedIn(ctx), scripts: ['dashboard.js'], data: { 'comms-port': String(info.commsPort) }, body }));
}

/** The home page of a role that cannot see machines (registrar): what it can do instead. */
function roleHome(ctx: PageContext): void {
  const body = html`
    <h1>Welcome</h1>
    <p>You are signed in with the role <strong>${ctx.actor.role}</strong>${isScoped(ctx.actor.scope) ? html`, limited to ${describeScope(ctx.actor.scope)}` : ''}.
      It may ${ROLE_SUMMARIES[ctx.actor.role]}, so there are no machines to show here.</p>
    <p>Change your password on the <a href="/account">account page</a>.</p>`;
  sendPage(ctx.res, 200, layout({ title: 'Dashboard', page: 'dashboard', nav: 'dashboard', user: signedIn(ctx), body }));
}

function machineTable(machines: MachineView[], commsPort: number, showRoles: boolean): SafeHtml {
  return html`<table class="table machines">
    <thead><tr><th scope="col">Machine</th><th scope="col">Status</th><th scope="col">Seen</th><th scope="col">Carrier</th><th scope="col">Version</th>${showRoles ? html`<th scope="col">Roles</th>` : ''}</tr></thead>
    <tbody>${machines.map((m) => machineRow(m, commsPort, showRoles))}</tbody>
  </table>`;
}

/** The Tentacle's version, and "upgrade available" when the server distributes a newer one for its architecture. */
export function versionCell(m: MachineView): SafeHtml {
  const version = m.tentacleVersion ?? html`<span class="muted">unknown</span>`;
  return m.upgradeAvailable ? html`${version} <span class="tag upgrade-available" title="reef machines upgrade installs it">upgrade available: ${m.upgradeAvailable}</span>` : html`${version}`;
}

export function machineRow(m: MachineView, commsPort: number, showRoles: boolean): SafeHtml {
  return html`<tr data-machine-id="${m.id}">
    <th scope="row" data-label="Machine"><a href="/machines/${seg(m.id)}">${m.name}</a> <span class="muted small">${m.commsStyle}</span></th>
    <td data-label="Status" data-field="status">${badge(m.online ? 'online' : 'offline')}</td>
    <td data-label="Seen" data-field="last-seen">${seen(m)}</td>
    <td data-label="Carrier" data-field="carrier">${carrierCell(currentCarriers(m), commsPort)}${!m.online && m.carrier ? html` <span class="muted small">(last)</span>` : ''}</td>
    <td data-label="Version" data-field="version">${versionCell(m)}</td>
    ${showRoles ? html`<td data-label="Roles">${m.roles.length ? m.roles.map((r) => html`<span class="tag">${r}</span> `) : html`<span class="muted">none</span>`}</td>` : ''}
  </tr>`;
}

/**
 * Online: "connected <time>", since when it is connected (its last-seen time is only when that
 * connection began). Offline: when it was last seen. web/dashboard.js renders the same.
 */
export function seen(m: MachineView): SafeHtml {
  return m.online && m.connectedSince ? html`connected ${time(m.connectedSince)}` : time(m.lastSeenAt);
}

/** The live connections' carriers (to this node, else to others), or the last one recorded while offline. */
export function currentCarriers(m: MachineView): string[] {
  if (m.connections.length) return [...new Set(m.connections.map((c) => c.carrier))];
  if (m.nodes.length) return [...new Set(m.nodes.map((n) => n.carrier))];
  return m.carrier ? [m.carrier] : [];
}

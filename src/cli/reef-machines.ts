import type { Command } from 'commander';
import type { MachineView } from '../api/contract.js';
import { ReefError } from '../errors.js';
import { note, printJson, printLine, runAction } from './common.js';
import { registerRotateCertificate } from './reef-machines-rotate.js';
import { cell, formatAge, formatTable, list } from './output.js';
import { addConnectionOptions, connect, itemsOf, query, segment, type ConnectionOpts } from './reef-connection.js';
import { registerUpgradeCommand } from './reef-machines-upgrade.js';

/**
 * `reef machines`, `reef environments`, `reef worker-pools`. Routes:
 *   GET    /api/machines?environment=&role=&workerPool=&kind=  -> { items: MachineView[] }
 *   GET    /api/machines/:name                                 -> MachineView
 *   DELETE /api/machines/:name
 *   GET    /api/environments | /api/worker-pools                -> { items: [{ name, ... }] }
 *   POST   /api/environments | /api/worker-pools  { name }
 *   DELETE /api/environments/:name | /api/worker-pools/:name
 */

export function registerMachineCommands(program: Command): void {
  const machines = program.command('machines').description('deployment targets and workers registered with the server');

  addConnectionOptions(
    machines
      .command('list')
      .description('list machines: name, kind, status, carrier, environments or pools, roles, when connected or last seen, version')
      .option('--environment <name>', 'only targets in this environment')
      .option('--role <role>', 'only targets with this role')
      .option('--worker-pool <name>', 'only workers in this pool')
      .option('--kind <kind>', 'target or worker')
      .option('--outdated', 'only machines whose Tentacle is older than one the server distributes (reef machines upgrade)'),
  ).action(
    runAction(async (opts: ConnectionOpts & { environment?: string; role?: string; workerPool?: string; kind?: string; outdated?: boolean }) => {
      const kind = opts.kind?.trim().toLowerCase();
      if (kind !== undefined && kind !== 'target' && kind !== 'worker') {
        throw new ReefError('REEF_INVALID_ARGUMENT', `--kind must be target or worker, not "${opts.kind}".`);
      }
      const api = await connect(opts);
      const path = `/api/machines${query({ environment: opts.environment, role: opts.role, workerPool: opts.workerPool, kind, outdated: opts.outdated ? 'true' : undefined })}`;
      const items = itemsOf<MachineView>(await api.json('GET', path));
      if (opts.json) return printJson(items);
      if (!items.length) return note(opts.outdated ? 'No machine runs an older Tentacle than the server distributes.' : 'No machines match.');
      printLine(machineTable(items));
    }),
  );

  addConnectionOptions(machines.command('show').description('show one machine').argument('<name>', 'machine name')).action(
    runAction(async (name: string, opts: ConnectionOpts) => {
      const machine = await (await connect(opts)).json<MachineView>('GET', `/api/machines/${segment(name)}`);
      if (opts.json) return printJson(machine);
      printLine(describeMachine(machine));
    }),
  );

  addConnectionOptions(
    machines.command('delete').description('remove a machine registration (the tentacle keeps running until told otherwise)').argument('<name>', 'machine name'),
  ).action(
    runAction(async (name: string, opts: ConnectionOpts) => {
      await (await connect(opts)).json('DELETE', `/api/machines/${segment(name)}`);
      if (opts.json) printJson({ deleted: name });
      else note(`Deleted machine "${name}".`);
    }),
  );

  registerRotateCertificate(machines);
  registerUpgradeCommand(machines);

  registerNamedCollection(program, 'environments', 'environment', '/api/environments', 'environments deployment targets belong to');
  registerNamedCollection(program, 'worker-pools', 'worker pool', '/api/worker-pools', 'pools of workers');
}

export function machineTable(items: readonly MachineView[], now = Date.now()): string {
  return formatTable(
    ['NAME', 'KIND', 'STATUS', 'CARRIER', 'ENVIRONMENTS/POOLS', 'ROLES', 'SEEN', 'VERSION'],
    items.map((m) => [
      m.name,
      m.kind,
      m.online ? 'online' : 'offline',
      cell(m.carrier ?? (m.commsStyle === 'listening' ? 'listening' : null)),
      list(m.kind === 'worker' ? m.workerPools : m.environments),
      m.kind === 'worker' ? '-' : list(m.roles),
      seen(m, now),
      versionCell(m),
    ]),
  );
}

/** The machine's Tentacle version, with the newer one the server distributes. */
function versionCell(m: MachineView): string {
  return m.upgradeAvailable ? `${cell(m.tentacleVersion)} (upgrade available: ${m.upgradeAvailable})` : cell(m.tentacleVersion);
}

/**
 * An online machine's last-seen time is when its connection began, however long ago: it is
 * shown as "connected 12m ago" (connected since then). An offline one: when it was last seen.
 */
function seen(m: MachineView, now = Date.now()): string {
  if (m.online && m.connectedSince) return `connected ${formatAge(m.connectedSince, now)}`;
  return formatAge(m.lastSeenAt, now);
}

function describeMachine(m: MachineView): string {
  const rows: Array<[string, string]> = [
    ['Name', m.name],
    ['Id', m.id],
    ['Kind', m.kind],
    ['Status', m.online ? 'online' : 'offline'],
    ['Comms style', m.commsStyle],
    ['Endpoint', m.endpoint ? `${m.endpoint.host}:${m.endpoint.port}` : '-'],
    ['Carrier', cell(m.carrier)],
    ['Thumbprint', m.thumbprint],
    ...(m.nextThumbprint ? [['Next thumbprint', `${m.nextThumbprint} (certificate rotation under way: either is accepted)`] as [string, string]] : []),
    [m.kind === 'worker' ? 'Worker pools' : 'Environments', list(m.kind === 'worker' ? m.workerPools : m.environments)],
    ['Roles', list(m.roles)],
    ['Version', versionCell(m)],
    m.online && m.connectedSince
      ? ['Connected since', `${m.connectedSince} (${formatAge(m.connectedSince)})`]
      : ['Last seen', m.lastSeenAt ? `${m.lastSeenAt} (${formatAge(m.lastSeenAt)})` : 'never'],
    ['Health', m.lastHealthAt ? `${m.lastHealth} at ${m.lastHealthAt}` : m.lastHealth],
    ['Registered', m.createdAt],
  ];
  for (const c of m.connections ?? []) rows.push(['Connection', `${c.carrier} from ${c.remoteAddress} since ${c.connectedAt}`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${v}`).join('\n');
}

interface NamedView {
  name: string;
}

function registerNamedCollection(program: Command, group: string, noun: string, path: string, description: string): void {
  const command = program.command(group).description(description);

  addConnectionOptions(command.command('list').description(`list ${noun}s, one name per line`)).action(
    runAction(async (opts: ConnectionOpts) => {
      const items = itemsOf<NamedView>(await (await connect(opts)).json('GET', path));
      if (opts.json) return printJson(items);
      if (!items.length) return note(`No ${noun}s yet; add one with "reef ${group} create NAME".`);
      for (const item of items) printLine(item.name);
    }),
  );

  addConnectionOptions(command.command('create').description(`create a ${noun}`).argument('<name>', `${noun} name`)).action(
    runAction(async (name: string, opts: ConnectionOpts) => {
      const created = await (await connect(opts)).json<unknown>('POST', path, { body: { name } });
      if (opts.json) return printJson(created ?? { name });
      note(`Created ${noun} "${name}".`);
    }),
  );

  addConnectionOptions(command.command('delete').description(`delete a ${noun}`).argument('<name>', `${noun} name`)).action(
    runAction(async (name: string, opts: ConnectionOpts) => {
      await (await connect(opts)).json('DELETE', `${path}/${segment(name)}`);
      if (opts.json) printJson({ deleted: name });
      else note(`Deleted ${noun} "${name}".`);
    }),
  );
}

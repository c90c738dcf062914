import type { ApiKeyView, ConnectionView, GroupView, HealthCheckView, LogLineView, MachineView, TaskMachineView, TaskView, UserView } from '../../api/contract.js';
import type { CommsServer } from '../../comms/index.js';
import type { ApiKey, Environment, HealthCheck, LogLine, Machine, TaskMachine, TaskSummary, TaskWithMachines, User, WorkerPool } from '../store/types.js';
import type { TentacleLinks } from '../tasks/api.js';
import { availableUpgrade, type TentacleRelease } from '../tentacle-releases/index.js';

/** Store rows to the contract's response shapes: internal fields (tickets, cursors) stay inside. */

/** `links`: the cluster's live tentacle links (engine.links()); this node's own are in `comms`. */
/** `releases`: the Tentacle executables the server distributes, for `upgradeAvailable`. */
export function machineView(machine: Machine, comms: CommsServer, links: TentacleLinks, releases: readonly TentacleRelease[] = []): MachineView {
  const nodes = (links.get(machine.thumbprint) ?? []).map((l) => ({ name: l.node, carrier: l.carrier, connectedAt: l.connectedAt }));
  const connections: ConnectionView[] = comms.links.connections(machine.thumbprint).map((client) => ({
    carrier: client.peer.carrier,
    remoteAddress: client.peer.remoteAddress,
    connectedAt: client.connectedAt.toISOString(),
  }));
  return {
    id: machine.id,
    name: machine.name,
    kind: machine.kind,
    thumbprint: machine.thumbprint,
    nextThumbprint: machine.nextThumbprint,
    commsStyle: machine.commsStyle,
    endpoint: machine.endpoint,
    environments: machine.environments,
    roles: machine.roles,
    workerPools: machine.workerPools,
    carrier: machine.carrier,
    tentacleVersion: machine.tentacleVersion,
    upgradeAvailable: availableUpgrade(machine, releases)?.version ?? null,
    lastSeenAt: machine.lastSeenAt,
    lastHealth: machine.lastHealth,
    lastHealthAt: machine.lastHealthAt,
    createdAt: machine.createdAt,
    connections,
    nodes,
    online: connections.length > 0 || nodes.length > 0,
    connectedSince: earliest([...connections.map((c) => c.connectedAt), ...nodes.map((n) => n.connectedAt)]),
  };
}

/** The earliest of some ISO times (they may differ in precision), or null. */
function earliest(times: string[]): string | null {
  let first: string | null = null;
  for (const time of times) if (first === null || Date.parse(time) < Date.parse(first)) first = time;
  return first === null ? null : new Date(first).toISOString();
}

export function taskMachineView(m: TaskMachine): TaskMachineView {
  return {
    machineId: m.machineId,
    machineName: m.machineName,
    state: m.state,
    exitCode: m.exitCode,
    error: m.error,
    startedAt: m.startedAt,
    finishedAt: m.finishedAt,
    lostContactSince: m.lostContactAt === null ? null : new Date(m.lostContactAt).toISOString(),
    lateReport:
      m.lateReportAt === null
        ? null
        : { receivedAt: new Date(m.lateReportAt).toISOString(), state: m.lateState, exitCode: m.lateExitCode, error: m.lateError, lines: m.logCursor - (m.lostCursor ?? m.logCursor) },
  };
}

export function taskView(task: TaskSummary | TaskWithMachines): TaskView {
  return {
    id: task.id,
    kind: task.kind,
    state: task.state,
    target: task.target,
    spec: task.spec,
    createdAt: task.createdAt,
    startedAt: task.startedAt,
    finishedAt: task.finishedAt,
    cancelRequestedAt: task.cancelRequestedAt,
    error: task.error,
    machineCount: 'machines' in task ? task.machines.length : task.machineCount,
    machines: 'machines' in task ? task.machines.map(taskMachineView) : [],
  };
}

export function logLineView(line: LogLine): LogLineView {
  return { seq: line.seq, machineId: line.machineId, at: line.at, stream: line.stream, text: line.text };
}

export function healthView(check: HealthCheck): HealthCheckView {
  return { id: check.id, machineId: check.machineId, ok: check.ok, details: check.details, at: check.at };
}

export function groupView(group: Environment | WorkerPool): GroupView {
  return { id: group.id, name: group.name, createdAt: group.createdAt };
}

export function apiKeyView(key: ApiKey): ApiKeyView {
  return { id: key.id, name: key.name, role: key.role, scope: key.scope, prefix: key.prefix, createdAt: key.createdAt, lastUsedAt: key.lastUsedAt, revokedAt: key.revokedAt };
}

export function userView(user: User): UserView {
  return { id: user.id, username: user.username, role: user.role, scope: user.scope, createdAt: user.createdAt, disabledAt: user.disabledAt };
}

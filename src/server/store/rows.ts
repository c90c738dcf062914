/**
 * Rows as both databases deliver them (timestamps as ISO strings), and their mapping to the
 * domain types. SQLite keeps JSON as text and booleans as 0/1; PostgreSQL's type parsers
 * deliver them decoded: the mapping accepts either.
 */
import type {
  Access,
  ApiKey,
  ApiKeyCredential,
  Environment,
  HealthCheck,
  JsonObject,
  LogLine,
  Role,
  Machine,
  Session,
  Task,
  TaskMachine,
  User,
  UserCredential,
  WorkerPool,
} from './types.js';

/** SQLite's lower() and PostgreSQL's under COLLATE "C" (every name column): ASCII only. */
export function fold(name: string): string {
  return name.replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
}

/** JSON as SQLite (text) or PostgreSQL (parsed) delivers it. */
export type JsonColumn = JsonObject | string;

export function jsonOf(value: JsonColumn): JsonObject;
export function jsonOf(value: JsonColumn | null): JsonObject | null;
export function jsonOf(value: JsonColumn | null): JsonObject | null {
  return typeof value === 'string' ? (JSON.parse(value) as JsonObject) : value;
}

/** `createdAt` -> `created_at`. */
type Snake<K extends string> = K extends `${infer Head}${infer Rest}`
  ? `${Head extends Lowercase<Head> ? Head : `_${Lowercase<Head>}`}${Snake<Rest>}`
  : K;

/** The row a domain type is stored as: its fields in snake_case, so the two never drift apart. */
type RowOf<T> = { [K in keyof T & string as Snake<K>]: T[K] };

export type NamedRow = RowOf<Environment>;
/** Role and scope as stored (005_roles.sql): the scope as two JSON arrays of names in text. */
export interface AccessRow {
  role: Role;
  scope_environments: string;
  scope_worker_pools: string;
}
export type ApiKeyRow = Omit<RowOf<ApiKeyCredential>, 'role' | 'scope'> & AccessRow;
export type UserRow = Omit<RowOf<UserCredential>, 'role' | 'scope'> & AccessRow;
export type SessionRow = Omit<RowOf<Session>, 'role' | 'scope'> & AccessRow;

/** The columns an Access is stored in. */
export function accessColumns(access: Access): AccessRow {
  return { role: access.role, scope_environments: JSON.stringify(access.scope.environments), scope_worker_pools: JSON.stringify(access.scope.workerPools) };
}

export function toAccess(r: AccessRow): Access {
  return { role: r.role, scope: { environments: JSON.parse(r.scope_environments) as string[], workerPools: JSON.parse(r.scope_worker_pools) as string[] } };
}
export type TaskMachineRow = RowOf<TaskMachine>;
export type LogRow = RowOf<LogLine>;
export type HealthRow = Omit<RowOf<HealthCheck>, 'ok' | 'details'> & { ok: boolean | number; details: JsonColumn | null };
export type TaskRow = Omit<RowOf<Task>, 'spec' | 'target'> & { spec: JsonColumn; target: JsonColumn };
export type MachineRow = Omit<RowOf<Machine>, 'endpoint' | 'environments' | 'roles' | 'worker_pools' | 'platform'> & {
  endpoint_host: string | null;
  endpoint_port: number | null;
  platform: JsonColumn | null;
};

export const named = (r: NamedRow): Environment & WorkerPool => ({ id: r.id, name: r.name, createdAt: r.created_at });

export function toHealth(r: HealthRow): HealthCheck {
  return { id: r.id, machineId: r.machine_id, ok: r.ok === true || r.ok === 1, details: jsonOf(r.details), at: r.at };
}

export function toApiKey(r: ApiKeyRow): ApiKey {
  return {
    id: r.id,
    name: r.name,
    prefix: r.prefix,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
    ...toAccess(r),
  };
}

export function toUser(r: UserRow): User {
  return { id: r.id, username: r.username, createdAt: r.created_at, disabledAt: r.disabled_at, ...toAccess(r) };
}

export function toSession(r: SessionRow): Session {
  return {
    idHash: r.id_hash,
    userId: r.user_id,
    username: r.username,
    csrfToken: r.csrf_token,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    ...toAccess(r),
  };
}

export function toTask(r: TaskRow): Task {
  return {
    id: r.id,
    kind: r.kind,
    spec: jsonOf(r.spec),
    target: jsonOf(r.target),
    state: r.state,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    cancelRequestedAt: r.cancel_requested_at,
    error: r.error,
  };
}

export function toTaskMachine(r: TaskMachineRow): TaskMachine {
  return {
    taskId: r.task_id,
    machineId: r.machine_id,
    machineName: r.machine_name,
    state: r.state,
    exitCode: r.exit_code,
    error: r.error,
    ticket: r.ticket,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    logCursor: r.log_cursor,
    logBytes: r.log_bytes,
    droppedLogLines: r.dropped_log_lines,
    droppedLogBytes: r.dropped_log_bytes,
    lostContactAt: r.lost_contact_at,
    lostCursor: r.lost_cursor === null ? null : Number(r.lost_cursor),
    lateReportAt: r.late_report_at,
    lateState: r.late_state,
    lateExitCode: r.late_exit_code,
    lateError: r.late_error,
  };
}

export function toLogLine(r: LogRow): LogLine {
  return { taskId: r.task_id, seq: r.seq, machineId: r.machine_id, at: r.at, stream: r.stream, text: r.text };
}

export function groupBy<T>(rows: T[], key: (row: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const k = key(row);
    const list = groups.get(k);
    if (list) list.push(row);
    else groups.set(k, [row]);
  }
  return groups;
}

/** One row of a machine's environments, roles or worker pools. */
export interface Membership {
  machine_id: string;
  name: string;
}

/** Machines with their environments, roles and pools (names sorted), from rows of the three link tables. */
export function toMachines(rows: MachineRow[], environments: Membership[], roles: Membership[], pools: Membership[]): Machine[] {
  const [envsOf, rolesOf, poolsOf] = [environments, roles, pools].map((members) => {
    const groups = groupBy(members, (m) => m.machine_id);
    return (id: string) => (groups.get(id) ?? []).map((m) => m.name).sort((a, b) => a.localeCompare(b));
  }) as [(id: string) => string[], (id: string) => string[], (id: string) => string[]];
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    kind: r.kind,
    thumbprint: r.thumbprint,
    nextThumbprint: r.next_thumbprint ?? null,
    commsStyle: r.comms_style,
    endpoint: r.endpoint_host !== null && r.endpoint_port !== null ? { host: r.endpoint_host, port: r.endpoint_port } : null,
    environments: envsOf(r.id),
    roles: rolesOf(r.id),
    workerPools: poolsOf(r.id),
    carrier: r.carrier,
    tentacleVersion: r.tentacle_version,
    platform: jsonOf(r.platform),
    lastSeenAt: r.last_seen_at,
    lastHealth: r.last_health,
    lastHealthAt: r.last_health_at,
    createdAt: r.created_at,
  }));
}

/**
 * The server's durable state, behind one async interface. SQLite (embedded default) and
 * PostgreSQL (several server nodes) implement it with the same numbered migrations, so
 * nothing here may mention a driver's types.
 *
 * Conventions every implementation keeps:
 * - Timestamps come out as ISO-8601 UTC strings (`2024-05-01T12:00:00.000Z`); inputs
 *   accept a `Date` or such a string.
 * - Names of environments, worker pools and machines are unique case-insensitively and
 *   kept as first written.
 * - Failures are `ReefError`s with stable codes: REEF_CONFLICT (duplicate name,
 *   thumbprint), REEF_NOT_FOUND (a referenced row is missing), REEF_IN_USE (delete of
 *   something still referenced), REEF_INVALID_ARGUMENT (input that can never be valid),
 *   REEF_BAD_THUMBPRINT, REEF_STORE_TOO_NEW (database migrated by a newer Reef).
 * - State transitions (`startTask`, `finishTaskMachine`, ...) never throw for a race or a
 *   repeat: they return `false` when the row is not in a state the transition starts
 *   from (already finished, already running), `true` when applied. They throw
 *   REEF_NOT_FOUND only when the task or machine row does not exist at all.
 */

import type { Role, Scope } from '../../api/roles.js';
import type { Thumbprint } from '../../pki/thumbprint.js';
import type { Coordination } from './coordination.js';
import type { JsonObject, TimeInput, Timestamp } from './values.js';

export type { JsonObject, TimeInput, Timestamp } from './values.js';
export type { Role, Scope } from '../../api/roles.js';

/** What a key or user may do (src/server/auth/roles.ts) and where (auth/scope.ts). */
export interface Access {
  role: Role;
  scope: Scope;
}

// ---------------------------------------------------------------- environments, pools

export interface Environment {
  id: string;
  name: string;
  createdAt: Timestamp;
}

export interface WorkerPool {
  id: string;
  name: string;
  createdAt: Timestamp;
}

// ---------------------------------------------------------------- machines

export type MachineKind = 'target' | 'worker';
export type CommsStyle = 'polling' | 'listening';
export type HealthStatus = 'healthy' | 'unhealthy' | 'unknown';

export interface Endpoint {
  host: string;
  port: number;
}

export interface Machine {
  /** `m-` followed by 12 random lowercase base32 characters. */
  id: string;
  name: string;
  kind: MachineKind;
  thumbprint: Thumbprint;
  /**
   * The thumbprint of the certificate its Tentacle made next during a certificate rotation,
   * accepted beside `thumbprint` until the Tentacle connects with it; null otherwise.
   */
  nextThumbprint: Thumbprint | null;
  commsStyle: CommsStyle;
  /** Where the server dials a listening tentacle; null for polling. */
  endpoint: Endpoint | null;
  /** Environment names (targets only), sorted. */
  environments: string[];
  /** Roles (targets only), sorted. */
  roles: string[];
  /** Worker pool names (workers only), sorted. */
  workerPools: string[];
  /** The carrier the tentacle last came in on (e.g. `tcp`, `sni-443`, `websocket`). */
  carrier: string | null;
  tentacleVersion: string | null;
  /** OS / platform facts the tentacle reported. */
  platform: JsonObject | null;
  lastSeenAt: Timestamp | null;
  lastHealth: HealthStatus;
  lastHealthAt: Timestamp | null;
  createdAt: Timestamp;
}

export interface MachineInput {
  name: string;
  kind: MachineKind;
  /** Any case, colons allowed; stored normalized. */
  thumbprint: string;
  commsStyle: CommsStyle;
  /** Required for listening, must be absent or null for polling. */
  endpoint?: Endpoint | null;
  /** Targets: at least one. Missing environments are created on demand. */
  environments?: string[];
  /** Targets: at least one. */
  roles?: string[];
  /** Workers: at least one. Missing pools are created on demand. */
  workerPools?: string[];
  tentacleVersion?: string | null;
  platform?: JsonObject | null;
}

export interface MachineFilter {
  kind?: MachineKind;
  /** Environment name, case-insensitive. */
  environment?: string;
  /** Role, case-insensitive. */
  role?: string;
  /** Worker pool name, case-insensitive. */
  workerPool?: string;
  /** Only these machine names (case-insensitive). */
  names?: string[];
}

export interface MachineTouch {
  lastSeenAt?: TimeInput;
  carrier?: string | null;
  version?: string | null;
  platform?: JsonObject | null;
}

export interface HealthInput {
  ok: boolean;
  details?: JsonObject | null;
  at?: TimeInput;
}

export interface HealthCheck {
  id: number;
  machineId: string;
  ok: boolean;
  details: JsonObject | null;
  at: Timestamp;
}

// ---------------------------------------------------------------- api keys

export interface ApiKey extends Access {
  id: string;
  name: string;
  /** Non-secret first characters of the key, used to find its row. */
  prefix: string;
  createdAt: Timestamp;
  lastUsedAt: Timestamp | null;
  revokedAt: Timestamp | null;
}

/** What only the verifier needs: never leaves the auth module. */
export interface ApiKeyCredential extends ApiKey {
  /** `sha256$<base64>` for keys made since SHA-256 hashing, else scrypt output in base64 (see auth/apikeys.ts). */
  hash: string;
  /** scrypt salt, base64; empty for SHA-256 hashes. */
  salt: string;
}

export interface ApiKeyInsert {
  name: string;
  prefix: string;
  hash: string;
  salt: string;
  /** Default: admin, the whole server. */
  access?: Access;
}

// ---------------------------------------------------------------- join tokens

/** The machines a join token may register: targets in these environments with these roles, or workers in these pools. */
/** A certificate and its key as the store keeps them. */
export interface StoredCertificate {
  thumbprint: string;
  certPem: string;
  keyPem: string;
}

export interface CertificateRotation {
  id: string;
  /** The certificate presented before the rotation. */
  old: StoredCertificate;
  /** The certificate presented once it is completed. */
  next: StoredCertificate;
  /** How long after completion Tentacles are told to drop the old thumbprint. */
  graceMs: number;
  startedBy: string;
  startedAt: Timestamp;
  completedAt: Timestamp | null;
}

export type CertificateRotationInsert = Pick<CertificateRotation, 'old' | 'next' | 'graceMs' | 'startedBy'>;

export interface CertificateTrust {
  machineId: string;
  /** When the machine confirmed trusting the new thumbprint. */
  trustedAt: Timestamp;
  /** When it confirmed dropping the old one. */
  droppedAt: Timestamp | null;
}

export interface JoinTokenScope {
  kind: MachineKind;
  /** Targets: at least one; empty for workers. */
  environments: string[];
  /** Targets: at least one; empty for workers. */
  roles: string[];
  /** Workers: at least one; empty for targets. */
  workerPools: string[];
}

/** A join token as stored: never the token itself, only its hash (which stays in the store module). */
export interface JoinToken {
  /** `tok-` followed by 12 random lowercase base32 characters; not secret. */
  id: string;
  scope: JoinTokenScope;
  /** How many registrations it allowed when made. */
  uses: number;
  usesLeft: number;
  /** Who made it, for `reef tokens list`: `API key "ci" (key-...)` or `user "alice"`. */
  createdBy: string;
  createdAt: Timestamp;
  expiresAt: Timestamp;
  lastUsedAt: Timestamp | null;
  revokedAt: Timestamp | null;
}

export interface JoinTokenInsert {
  /** The stored form of the token's hash (auth/secret-hash.ts). */
  hash: string;
  scope: JoinTokenScope;
  uses: number;
  createdBy: string;
  expiresAt: TimeInput;
}

// ---------------------------------------------------------------- portal users, sessions

/** A person who signs in to the portal. */
export interface User extends Access {
  /** `user-` followed by 12 random lowercase base32 characters. */
  id: string;
  /** Unique case-insensitively, kept as first written. */
  username: string;
  createdAt: Timestamp;
  /** Set while the user may not sign in. */
  disabledAt: Timestamp | null;
}

/** What only the password verifier needs: never leaves src/server/auth. */
export interface UserCredential extends User {
  /** Self-describing scrypt hash, stored and returned as an opaque string. */
  passwordHash: string;
}

export interface UserInsert {
  username: string;
  passwordHash: string;
  /** Default: admin, the whole server. */
  access?: Access;
}

/** A signed-in browser. The session id itself is never stored, only its SHA-256. */
export interface Session extends Access {
  /** Lowercase hex SHA-256 of the session id in the browser's cookie. */
  idHash: string;
  userId: string;
  /** The user's name, role and scope, joined in so a request needs one read. */
  username: string;
  /** Sent back by the page on every state-changing request. */
  csrfToken: string;
  createdAt: Timestamp;
  expiresAt: Timestamp;
}

export interface SessionInsert {
  idHash: string;
  userId: string;
  csrfToken: string;
  expiresAt: TimeInput;
}

// ---------------------------------------------------------------- tasks

export type TaskKind = 'run-script' | 'push-file' | 'health-check' | 'rotate-machine-certificate' | 'upgrade-tentacle';
export type TaskState = 'Queued' | 'Running' | 'Success' | 'Failed' | 'Cancelled' | 'TimedOut';
export type TaskMachineState = 'Pending' | 'Running' | 'Success' | 'Failed' | 'Cancelled' | 'TimedOut';
export type FinalState = 'Success' | 'Failed' | 'Cancelled' | 'TimedOut';

export const FINAL_STATES: readonly FinalState[] = ['Success', 'Failed', 'Cancelled', 'TimedOut'];

export interface Task {
  /** `T-000123`: numbered in creation order (wider past a million, still ordered). */
  id: string;
  kind: TaskKind;
  spec: JsonObject;
  /** How the machines were chosen (environment + role, pool, names), for display. */
  target: JsonObject;
  state: TaskState;
  createdAt: Timestamp;
  startedAt: Timestamp | null;
  finishedAt: Timestamp | null;
  cancelRequestedAt: Timestamp | null;
  error: string | null;
}

export interface TaskMachine {
  taskId: string;
  /** No foreign key: task history outlives a deleted machine. */
  machineId: string;
  /** The machine's name when the task was created. */
  machineName: string;
  state: TaskMachineState;
  exitCode: number | null;
  error: string | null;
  /** Unique, chosen by the server; the tentacle's script is started and found by it. */
  ticket: string;
  startedAt: Timestamp | null;
  finishedAt: Timestamp | null;
  /** Highest tentacle-side log sequence number already stored (0 = none). */
  logCursor: number;
  /** UTF-8 bytes of Tentacle output stored in the log for this machine, counted against the log quota. */
  logBytes: number;
  /** Tentacle output left out once the log quota was reached. */
  droppedLogLines: number;
  droppedLogBytes: number;
  /**
   * Since when the server has not reached the Tentacle running this part's script; null
   * while in contact. Kept on a part failed for lost contact: it awaits a late report.
   */
  lostContactAt: Timestamp | null;
  /** logCursor when contact was lost: lines past it were collected after (late lines, once the part failed). */
  lostCursor: number | null;
  /** When a late report arrived: the Tentacle came back after the part had failed for lost contact. */
  lateReportAt: Timestamp | null;
  /** The script's real outcome, from the late report (the part's own state stays Failed). */
  lateState: FinalState | null;
  lateExitCode: number | null;
  lateError: string | null;
}

/** What a Tentacle reported about a script after its part had failed for lost contact. */
export interface LateReport {
  state: FinalState | null;
  exitCode: number | null;
  error: string | null;
  at?: TimeInput;
}

export interface TaskWithMachines extends Task {
  machines: TaskMachine[];
}

/** A task in a list: its machines counted, not loaded. */
export interface TaskSummary extends Task {
  machineCount: number;
}

export interface TaskInput {
  kind: TaskKind;
  spec: JsonObject;
  target: JsonObject;
  /** Machine ids; names are snapshotted. Unknown ids fail with REEF_NOT_FOUND. */
  machineIds: string[];
}

export interface TaskFilter {
  state?: TaskState;
  /** Default 50, at most 1000. */
  limit?: number;
  /** A task id: return only tasks created before it (paging, newest first). */
  before?: string;
  /** Only tasks every machine of which is one of these ids (a scoped caller's machines). */
  onlyMachineIds?: string[];
}

export interface FinishTaskMachine {
  state: FinalState;
  exitCode?: number | null;
  error?: string | null;
  at?: TimeInput;
}

export interface FinishTask {
  state: FinalState;
  error?: string | null;
  at?: TimeInput;
}

// ---------------------------------------------------------------- task log

export type LogStream = 'stdout' | 'stderr' | 'info' | 'error';

export interface LogLine {
  taskId: string;
  /** 1-based, contiguous per task, in the order lines were stored. */
  seq: number;
  /** null for task-level lines. */
  machineId: string | null;
  at: Timestamp;
  stream: LogStream;
  text: string;
}

export interface TentacleLogLine {
  /** The tentacle's own sequence number for this script's output, 1-based. */
  tentacleSeq: number;
  at: TimeInput;
  stream: LogStream;
  text: string;
}

// ---------------------------------------------------------------- audit log

/** Who did something (src/server/audit/actor.ts says which kinds exist and how they are named). */
export interface AuditActor {
  kind: string;
  /** The key's, user's, token's or machine's id; null when there is none (an unknown username). */
  id: string | null;
  name: string | null;
}

/** What an event is about: a machine, a key, a task... */
export interface AuditTarget {
  kind: string;
  id: string | null;
  name: string | null;
}

/** One line of the append-only audit log. */
export interface AuditEvent {
  /** Increasing in the order events were stored, across every node. */
  id: number;
  at: Timestamp;
  /** The server node that recorded it. */
  node: string;
  actor: AuditActor;
  /** From the catalogue in src/server/audit/kinds.ts; the store takes any well-formed kind. */
  kind: string;
  target: AuditTarget | null;
  /** The client's address (PROXY protocol aware), or null when the change came from no connection. */
  address: string | null;
  details: JsonObject | null;
}

export interface AuditEventInput {
  node: string;
  actor: AuditActor;
  kind: string;
  target?: AuditTarget | null;
  address?: string | null;
  details?: JsonObject | null;
}

export interface AuditFilter {
  /** An actor's id, or its name (any case). */
  actor?: string;
  /** Exactly this kind. */
  kind?: string;
  /** Kinds of this family: `task` is task.created, task.cancelled... */
  family?: string;
  /** At or after. */
  since?: TimeInput;
  /** Before. */
  until?: TimeInput;
  /** An event id: only older events (paging, newest first). */
  before?: number;
  /** Default 100, at most 1000. */
  limit?: number;
}

// ---------------------------------------------------------------- the store

export interface Store {
  // environments and worker pools
  /** Returns the environment with this name (any case), creating it if missing. */
  ensureEnvironment(name: string): Promise<Environment>;
  getEnvironment(idOrName: string): Promise<Environment | null>;
  listEnvironments(): Promise<Environment[]>;
  /** false if missing; REEF_IN_USE while machines belong to it. */
  deleteEnvironment(idOrName: string): Promise<boolean>;
  ensureWorkerPool(name: string): Promise<WorkerPool>;
  getWorkerPool(idOrName: string): Promise<WorkerPool | null>;
  listWorkerPools(): Promise<WorkerPool[]>;
  /** false if missing; REEF_IN_USE while workers belong to it. */
  deleteWorkerPool(idOrName: string): Promise<boolean>;

  // machines
  /** REEF_CONFLICT if the name or the thumbprint is taken. */
  createMachine(input: MachineInput): Promise<Machine>;
  /**
   * Re-registration with `--force`: updates the machine with this thumbprint, or else the
   * one with this name (a reinstalled tentacle with a new certificate), keeping its id,
   * history and health; creates it when neither exists. REEF_CONFLICT when the thumbprint
   * and the name belong to two different machines.
   */
  upsertMachine(input: MachineInput): Promise<{ machine: Machine; created: boolean }>;
  getMachine(idOrName: string): Promise<Machine | null>;
  getMachineByThumbprint(thumbprint: string): Promise<Machine | null>;
  /** The machine whose pending next thumbprint (certificate rotation) this is, if any. */
  getMachineByNextThumbprint(thumbprint: string): Promise<Machine | null>;
  /**
   * Records the thumbprint of the certificate the machine's Tentacle made next; the same one
   * again changes nothing. REEF_NOT_FOUND without the machine; REEF_THUMBPRINT_TAKEN when the
   * thumbprint is any machine's current one, or another machine's next one.
   */
  setNextThumbprint(machineId: string, thumbprint: string): Promise<Machine>;
  /**
   * Makes the machine's next thumbprint its thumbprint, if it is still `thumbprint`; answers
   * the thumbprint it replaced, or null when there was nothing to do (already done, or
   * another rotation's). One node wins a race.
   */
  promoteNextThumbprint(machineId: string, thumbprint: string): Promise<{ machine: Machine; previous: Thumbprint } | null>;
  /** Sorted by name. */
  listMachines(filter?: MachineFilter): Promise<Machine[]>;
  /** false if missing. Health history goes with it; task history stays. */
  deleteMachine(idOrName: string): Promise<boolean>;
  /** Records a contact from a tentacle. false if no machine has this thumbprint. */
  touchMachine(thumbprint: string, touch: MachineTouch): Promise<boolean>;
  /** Records contacts from many tentacles at `at` (a reconnect burst): one statement per carrier. */
  touchMachines(contacts: readonly { thumbprint: string; carrier?: string }[], at: Date): Promise<void>;
  /** Appends to the health history and sets lastHealth. REEF_NOT_FOUND if no machine. */
  recordHealth(machineId: string, health: HealthInput): Promise<HealthCheck>;
  /** Newest first; default 20. */
  listHealth(machineId: string, limit?: number): Promise<HealthCheck[]>;

  // api keys (hashing is src/server/auth's job)
  insertApiKey(key: ApiKeyInsert): Promise<ApiKey>;
  getApiKeyCredential(prefix: string): Promise<ApiKeyCredential | null>;
  listApiKeys(): Promise<ApiKey[]>;
  /** false if missing or already revoked. */
  revokeApiKey(id: string, at?: TimeInput): Promise<boolean>;
  markApiKeyUsed(id: string, at?: TimeInput): Promise<void>;

  // join tokens (hashing and the meaning of scopes are src/server/auth/join-tokens.ts's job)
  insertJoinToken(token: JoinTokenInsert): Promise<JoinToken>;
  /** The token with this stored hash, usable or not. */
  getJoinTokenByHash(hash: string): Promise<JoinToken | null>;
  getJoinToken(id: string): Promise<JoinToken | null>;
  /** Newest first, revoked and expired ones included. */
  listJoinTokens(): Promise<JoinToken[]>;
  /** false if missing or already revoked. */
  revokeJoinToken(id: string, at?: TimeInput): Promise<boolean>;
  /**
   * Takes one use of the token with this id in one statement, so two registrations racing
   * for the last use cannot both have it (on every node). Returns the token as it is after,
   * or null when it is unknown, revoked, expired at `at` or used up.
   */
  consumeJoinToken(id: string, at?: TimeInput): Promise<JoinToken | null>;
  /** Gives back a use taken by consumeJoinToken whose registration then failed. */
  returnJoinTokenUse(id: string): Promise<void>;

  // server certificate rotations (src/server/certificate-rotation.ts)
  /** REEF_ROTATION_IN_PROGRESS when one is under way already. */
  insertCertificateRotation(rotation: CertificateRotationInsert): Promise<CertificateRotation>;
  /** The most recently started rotation, under way or completed; null before the first. */
  latestCertificateRotation(): Promise<CertificateRotation | null>;
  /** Marks it completed; null when it is not under way (completed already, or unknown). */
  completeCertificateRotation(id: string, at?: TimeInput): Promise<CertificateRotation | null>;
  /** A machine confirmed trusting the rotation's new thumbprint, or dropping its old one; repeats change nothing. */
  recordCertificateTrust(rotationId: string, machineId: string, change: 'trusted' | 'dropped', at?: TimeInput): Promise<void>;
  listCertificateTrust(rotationId: string): Promise<CertificateTrust[]>;

  // portal users and sessions (hashing and expiry checks are src/server/auth's job)
  /** REEF_CONFLICT if the username (any case) is taken. */
  insertUser(user: UserInsert): Promise<User>;
  /** By username, any case. */
  getUserCredential(username: string): Promise<UserCredential | null>;
  /** By id or username (any case). */
  getUser(idOrName: string): Promise<User | null>;
  /** By username. */
  listUsers(): Promise<User[]>;
  countUsers(): Promise<number>;
  /**
   * Replaces the password hash and ends every session of the user but `keepSession` (an id
   * hash: the user's own, when they change their password). false if no such user.
   */
  setUserPassword(userId: string, passwordHash: string, keepSession?: string): Promise<boolean>;
  /**
   * Disables (ending every session of the user) or enables a user. false if no such user
   * or it already was so.
   */
  setUserDisabled(userId: string, disabled: boolean, at?: TimeInput): Promise<boolean>;
  /** Replaces a user's role and scope; their sessions carry the new ones at once. false if no such user. */
  setUserAccess(userId: string, access: Access): Promise<boolean>;
  /** REEF_NOT_FOUND if the user does not exist. */
  insertSession(session: SessionInsert): Promise<Session>;
  /** The session with this id hash, expired or not (the caller compares expiresAt); null once its user is disabled. */
  getSession(idHash: string): Promise<Session | null>;
  /** false if missing. */
  deleteSession(idHash: string): Promise<boolean>;
  /** Deletes sessions whose expiresAt is at or before `at`; returns how many. */
  deleteExpiredSessions(at?: TimeInput): Promise<number>;

  // tasks
  createTask(input: TaskInput): Promise<TaskWithMachines>;
  getTask(id: string): Promise<TaskWithMachines | null>;
  getTaskMachineByTicket(ticket: string): Promise<TaskMachine | null>;
  /** Newest first. */
  listTasks(filter?: TaskFilter): Promise<TaskSummary[]>;
  /** Queued and Running tasks with their machines, oldest first: recovery after a restart. */
  listUnfinishedTasks(): Promise<TaskWithMachines[]>;
  /** Queued -> Running. */
  startTask(taskId: string, at?: TimeInput): Promise<boolean>;
  /** Queued | Running -> final. */
  finishTask(taskId: string, finish: FinishTask): Promise<boolean>;
  /** Marks an unfinished task for cancellation; false if finished or already requested. */
  requestCancel(taskId: string, at?: TimeInput): Promise<boolean>;
  /** Pending -> Running. */
  startTaskMachine(taskId: string, machineId: string, at?: TimeInput): Promise<boolean>;
  /** Pending | Running -> final. */
  finishTaskMachine(taskId: string, machineId: string, finish: FinishTaskMachine): Promise<boolean>;
  /**
   * Records since when the server has lost contact with a running part's Tentacle (null:
   * back in contact). Only while the part runs; false otherwise.
   */
  setLostContact(taskId: string, machineId: string, since: TimeInput | null): Promise<boolean>;
  /**
   * Parts out of contact with their Tentacle: Running ones waiting for it, and Failed ones
   * (failed for lost contact) awaiting a late report; oldest first, of one machine when given.
   */
  listLostContact(machineId?: string): Promise<TaskMachine[]>;
  /** Records a late report on a part awaiting one; false when it is not (already reported). */
  recordLateReport(taskId: string, machineId: string, report: LateReport): Promise<boolean>;

  // task log
  /**
   * In one transaction: drops lines at or below the machine's logCursor (and repeats
   * within the batch), numbers the rest after the task's last line, stores them and
   * advances logCursor. Returns the stored lines. A retried fetch is therefore harmless.
   *
   * With `quotaBytes`, the machine's stored output (logBytes) never passes it: the first
   * line that would is replaced by one line saying the rest is dropped, and every later
   * line is only counted (droppedLogLines, droppedLogBytes), while logCursor still advances.
   */
  appendMachineLog(taskId: string, machineId: string, lines: TentacleLogLine[], options?: { quotaBytes?: number }): Promise<LogLine[]>;
  appendTaskLog(taskId: string, machineId: string | null, stream: LogStream, text: string, at?: TimeInput): Promise<LogLine>;
  /**
   * Lines with seq > afterSeq, ascending: at most `limit` (default 1000, at most 10000) and
   * at most `maxBytes` of text (default and at most LOG_PAGE_BYTES, 1 MiB), but always at
   * least one line when there is one. An empty answer means there is nothing after afterSeq.
   */
  readLog(taskId: string, afterSeq?: number, limit?: number, maxBytes?: number): Promise<LogLine[]>;

  // audit log: append-only (the schema refuses UPDATE and DELETE)
  appendAuditEvent(event: AuditEventInput): Promise<AuditEvent>;
  /** Newest first. */
  listAuditEvents(filter?: AuditFilter): Promise<AuditEvent[]>;

  /** How server nodes on this store divide the work (see coordination.ts). */
  readonly coordination: Coordination;

  close(): Promise<void>;
}

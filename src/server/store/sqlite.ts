import BetterSqlite3 from 'better-sqlite3';
import type { Database, Statement } from 'better-sqlite3';
import { ReefError } from '../../errors.js';
import { normalizeThumbprint } from '../../pki/thumbprint.js';
import { newId, newTicket, taskIdOf, taskNumOf } from './ids.js';
import {
  checkFinalState,
  checkMachineInput,
  checkName,
  checkStream,
  checkTaskKind,
  clampLimit,
  invalid,
  toTimestamp,
  type CheckedMachine,
} from './input.js';
import { migrateSqlite } from './migrate.js';
import { SqliteCoordination } from './sqlite-coordination.js';
import type {
  ApiKey,
  ApiKeyCredential,
  ApiKeyInsert,
  Environment,
  FinishTask,
  FinishTaskMachine,
  HealthCheck,
  HealthInput,
  JsonObject,
  LogLine,
  LogStream,
  Machine,
  MachineFilter,
  MachineInput,
  MachineTouch,
  Session,
  SessionInsert,
  Store,
  Task,
  TaskFilter,
  TaskInput,
  TaskMachine,
  TaskWithMachines,
  TentacleLogLine,
  TimeInput,
  User,
  UserCredential,
  UserInsert,
  WorkerPool,
} from './types.js';
import {
  groupBy,
  named,
  toApiKey,
  toHealth,
  toLogLine,
  toMachines,
  toSession,
  toTask,
  toTaskMachine,
  toUser,
  type ApiKeyRow,
  type HealthRow,
  type LogRow,
  type MachineRow,
  type Membership,
  type NamedRow,
  type SessionRow,
  type TaskMachineRow,
  type TaskRow,
  type UserRow,
} from './rows.js';

export interface SqliteStoreOptions {
  /** How long a write waits for another process's write lock before failing. Default 5000 ms. */
  busyTimeoutMs?: number;
}

/**
 * Opens (creating if needed) a SQLite store and brings its schema up to date.
 *
 * WAL lets readers run beside the one writer; every write transaction starts IMMEDIATE, so
 * two processes on one file queue on busy_timeout instead of failing on a lock upgrade.
 * better-sqlite3 is synchronous, so inside one process each method's transaction runs
 * whole before any other: that alone serializes log appends for a task.
 */
export async function createSqliteStore(path: string, options: SqliteStoreOptions = {}): Promise<Store> {
  let db: Database;
  try {
    db = new BetterSqlite3(path);
  } catch (err) {
    throw new ReefError(
      'REEF_STORE_OPEN_FAILED',
      `Cannot open the SQLite store at ${path}: ${err instanceof Error ? err.message : String(err)}. ` +
        `Check that its directory exists and is writable.`,
      { cause: err },
    );
  }
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    db.pragma('journal_mode = WAL');
    // NORMAL is durable in WAL mode except for the last commits on power loss, not on a crash.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrateSqlite(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return new SqliteStore(db);
}

// ---------------------------------------------------------------- rows

/** SQLite keeps JSON as text and booleans as 0/1; these rows are decoded before mapping. */
type SqliteMachineRow = Omit<MachineRow, 'platform'> & { platform: string | null };
type SqliteHealthRow = Omit<HealthRow, 'ok' | 'details'> & { ok: number; details: string | null };
type SqliteTaskRow = Omit<TaskRow, 'spec' | 'target'> & { spec: string; target: string };

const parseJson = (text: string | null): JsonObject | null => (text === null ? null : (JSON.parse(text) as JsonObject));
const healthOf = (r: SqliteHealthRow): HealthCheck => toHealth({ ...r, ok: r.ok === 1, details: parseJson(r.details) });
const taskOf = (r: SqliteTaskRow): Task => toTask({ ...r, spec: parseJson(r.spec) ?? {}, target: parseJson(r.target) ?? {} });



const UNFINISHED_TASK = `('Queued', 'Running')`;
const UNFINISHED_MACHINE = `('Pending', 'Running')`;

// ---------------------------------------------------------------- the store

class SqliteStore implements Store {
  readonly #db: Database;
  readonly #statements = new Map<string, Statement>();
  readonly coordination: SqliteCoordination;
  #closed = false;

  constructor(db: Database) {
    this.#db = db;
    this.coordination = new SqliteCoordination(
      (sql) => this.#sql(sql),
      (fn) => this.#write(fn),
    );
  }

  /** Prepared once per distinct SQL text. */
  #sql(sql: string): Statement {
    if (this.#closed) throw new ReefError('REEF_STORE_CLOSED', 'The store was closed; open a new one.');
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** Runs fn in a write transaction that takes the write lock up front. */
  #write<T>(fn: () => T): T {
    if (this.#closed) throw new ReefError('REEF_STORE_CLOSED', 'The store was closed; open a new one.');
    try {
      return this.#db.transaction(fn).immediate();
    } catch (err) {
      if ((err as { code?: unknown }).code === 'SQLITE_BUSY') {
        throw new ReefError(
          'REEF_STORE_BUSY',
          `The SQLite store ${this.#db.name} stayed locked by another process past busy_timeout. ` +
            `Only one Reef server should use a SQLite file; use PostgreSQL for several nodes.`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  // ------------------------------------------------------------ environments, pools

  #ensureNamed(table: 'environments' | 'worker_pools', idPrefix: 'env' | 'pool', name: string): NamedRow {
    const found = this.#sql(`SELECT id, name, created_at FROM ${table} WHERE lower(name) = lower(?)`).get(name) as
      | NamedRow
      | undefined;
    if (found) return found;
    const row: NamedRow = { id: newId(idPrefix), name, created_at: new Date().toISOString() };
    this.#sql(`INSERT INTO ${table} (id, name, created_at) VALUES (?, ?, ?)`).run(row.id, row.name, row.created_at);
    return row;
  }

  #getNamed(table: 'environments' | 'worker_pools', idOrName: string): NamedRow | undefined {
    // An id match wins over a name that happens to look like an id.
    return this.#sql(
      `SELECT id, name, created_at FROM ${table} WHERE id = ? OR lower(name) = lower(?) ORDER BY id = ? DESC LIMIT 1`,
    ).get(idOrName, idOrName, idOrName) as NamedRow | undefined;
  }

  #deleteNamed(table: 'environments' | 'worker_pools', idOrName: string): boolean {
    const [what, link, column, hint] =
      table === 'environments'
        ? ['Environment', 'machine_environments', 'environment_id', 'Move or delete those machines first.']
        : ['Worker pool', 'machine_worker_pools', 'pool_id', 'Move or delete those workers first.'];
    return this.#write(() => {
      const row = this.#getNamed(table, idOrName);
      if (!row) return false;
      const users = this.#sql(
        `SELECT m.name FROM ${link} l JOIN machines m ON m.id = l.machine_id WHERE l.${column} = ? ORDER BY lower(m.name)`,
      )
        .pluck()
        .all(row.id) as string[];
      if (users.length > 0) {
        const shown = users.slice(0, 10).join(', ') + (users.length > 10 ? `, and ${users.length - 10} more` : '');
        throw new ReefError(
          'REEF_IN_USE',
          `${what} "${row.name}" still has ${users.length} machine(s): ${shown}. ${hint}`,
        );
      }
      this.#sql(`DELETE FROM ${table} WHERE id = ?`).run(row.id);
      return true;
    });
  }

  async ensureEnvironment(name: string): Promise<Environment> {
    const checked = checkName('Environment name', name);
    return named(this.#write(() => this.#ensureNamed('environments', 'env', checked)));
  }

  async getEnvironment(idOrName: string): Promise<Environment | null> {
    const row = this.#getNamed('environments', idOrName);
    return row ? named(row) : null;
  }

  async listEnvironments(): Promise<Environment[]> {
    const rows = this.#sql('SELECT id, name, created_at FROM environments ORDER BY lower(name)').all() as NamedRow[];
    return rows.map(named);
  }

  async deleteEnvironment(idOrName: string): Promise<boolean> {
    return this.#deleteNamed('environments', idOrName);
  }

  async ensureWorkerPool(name: string): Promise<WorkerPool> {
    const checked = checkName('Worker pool name', name);
    return named(this.#write(() => this.#ensureNamed('worker_pools', 'pool', checked)));
  }

  async getWorkerPool(idOrName: string): Promise<WorkerPool | null> {
    const row = this.#getNamed('worker_pools', idOrName);
    return row ? named(row) : null;
  }

  async listWorkerPools(): Promise<WorkerPool[]> {
    const rows = this.#sql('SELECT id, name, created_at FROM worker_pools ORDER BY lower(name)').all() as NamedRow[];
    return rows.map(named);
  }

  async deleteWorkerPool(idOrName: string): Promise<boolean> {
    return this.#deleteNamed('worker_pools', idOrName);
  }

  // ------------------------------------------------------------ machines

  /** Machines with their environments, roles and pools, in three queries whatever the count. */
  #hydrate(rows: SqliteMachineRow[]): Machine[] {
    if (rows.length === 0) return [];
    const ids = JSON.stringify(rows.map((r) => r.id));
    const envs = this.#sql(
        `SELECT l.machine_id AS machine_id, e.name AS name FROM machine_environments l
         JOIN environments e ON e.id = l.environment_id WHERE l.machine_id IN (SELECT value FROM json_each(?))`,
    ).all(ids) as Membership[];
    const roles = this.#sql(
        `SELECT machine_id, role AS name FROM machine_roles WHERE machine_id IN (SELECT value FROM json_each(?))`,
    ).all(ids) as Membership[];
    const pools = this.#sql(
        `SELECT l.machine_id AS machine_id, p.name AS name FROM machine_worker_pools l
         JOIN worker_pools p ON p.id = l.pool_id WHERE l.machine_id IN (SELECT value FROM json_each(?))`,
    ).all(ids) as Membership[];
    return toMachines(rows.map((r) => ({ ...r, platform: parseJson(r.platform) })), envs, roles, pools);
  }

  #machineRow(idOrName: string): SqliteMachineRow | undefined {
    return this.#sql('SELECT * FROM machines WHERE id = ? OR lower(name) = lower(?) ORDER BY id = ? DESC LIMIT 1').get(
      idOrName,
      idOrName,
      idOrName,
    ) as SqliteMachineRow | undefined;
  }

  #machineByThumbprint(thumbprint: string): SqliteMachineRow | undefined {
    return this.#sql('SELECT * FROM machines WHERE thumbprint = ?').get(thumbprint) as SqliteMachineRow | undefined;
  }

  #loadMachine(id: string): Machine {
    const row = this.#sql('SELECT * FROM machines WHERE id = ?').get(id) as SqliteMachineRow;
    return this.#hydrate([row])[0]!;
  }

  #setMemberships(machineId: string, m: CheckedMachine): void {
    this.#sql('DELETE FROM machine_environments WHERE machine_id = ?').run(machineId);
    this.#sql('DELETE FROM machine_roles WHERE machine_id = ?').run(machineId);
    this.#sql('DELETE FROM machine_worker_pools WHERE machine_id = ?').run(machineId);
    for (const name of m.environments) {
      const env = this.#ensureNamed('environments', 'env', name);
      this.#sql('INSERT INTO machine_environments (machine_id, environment_id) VALUES (?, ?)').run(machineId, env.id);
    }
    for (const role of m.roles) {
      this.#sql('INSERT INTO machine_roles (machine_id, role) VALUES (?, ?)').run(machineId, role);
    }
    for (const name of m.workerPools) {
      const pool = this.#ensureNamed('worker_pools', 'pool', name);
      this.#sql('INSERT INTO machine_worker_pools (machine_id, pool_id) VALUES (?, ?)').run(machineId, pool.id);
    }
  }

  #insertMachine(m: CheckedMachine): string {
    const id = newId('m');
    this.#sql(
      `INSERT INTO machines (id, name, kind, thumbprint, comms_style, endpoint_host, endpoint_port,
         tentacle_version, platform, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      id,
      m.name,
      m.kind,
      m.thumbprint,
      m.commsStyle,
      m.endpoint?.host ?? null,
      m.endpoint?.port ?? null,
      m.tentacleVersion,
      m.platform === null ? null : JSON.stringify(m.platform),
      new Date().toISOString(),
    );
    this.#setMemberships(id, m);
    return id;
  }

  async createMachine(input: MachineInput): Promise<Machine> {
    const m = checkMachineInput(input);
    return this.#write(() => {
      const byThumbprint = this.#machineByThumbprint(m.thumbprint);
      if (byThumbprint) {
        throw new ReefError(
          'REEF_CONFLICT',
          `A machine with thumbprint ${m.thumbprint} is already registered as "${byThumbprint.name}" (${byThumbprint.id}). ` +
            `Register again with --force to replace it, or deregister it first.`,
        );
      }
      const byName = this.#sql('SELECT id, thumbprint FROM machines WHERE lower(name) = lower(?)').get(m.name) as
        | { id: string; thumbprint: string }
        | undefined;
      if (byName) {
        throw new ReefError(
          'REEF_CONFLICT',
          `The machine name "${m.name}" is already used by ${byName.id} (thumbprint ${byName.thumbprint}). ` +
            `Choose another --name, or register with --force to replace that machine.`,
        );
      }
      return this.#loadMachine(this.#insertMachine(m));
    });
  }

  async upsertMachine(input: MachineInput): Promise<{ machine: Machine; created: boolean }> {
    const m = checkMachineInput(input);
    return this.#write(() => {
      const byThumbprint = this.#machineByThumbprint(m.thumbprint);
      const byName = this.#sql('SELECT * FROM machines WHERE lower(name) = lower(?)').get(m.name) as SqliteMachineRow | undefined;
      if (byThumbprint && byName && byThumbprint.id !== byName.id) {
        throw new ReefError(
          'REEF_CONFLICT',
          `Thumbprint ${m.thumbprint} belongs to machine "${byThumbprint.name}" (${byThumbprint.id}) but the name ` +
            `"${m.name}" belongs to another machine (${byName.id}). Deregister one of them, or choose another --name.`,
        );
      }
      const existing = byThumbprint ?? byName;
      if (!existing) return { machine: this.#loadMachine(this.#insertMachine(m)), created: true };
      this.#sql(
        `UPDATE machines SET name = ?, kind = ?, thumbprint = ?, comms_style = ?, endpoint_host = ?, endpoint_port = ?,
           tentacle_version = coalesce(?, tentacle_version), platform = coalesce(?, platform)
         WHERE id = ?`,
      ).run(
        m.name,
        m.kind,
        m.thumbprint,
        m.commsStyle,
        m.endpoint?.host ?? null,
        m.endpoint?.port ?? null,
        m.tentacleVersion,
        m.platform === null ? null : JSON.stringify(m.platform),
        existing.id,
      );
      this.#setMemberships(existing.id, m);
      return { machine: this.#loadMachine(existing.id), created: false };
    });
  }

  async getMachine(idOrName: string): Promise<Machine | null> {
    const row = this.#machineRow(idOrName);
    return row ? this.#hydrate([row])[0]! : null;
  }

  async getMachineByThumbprint(thumbprint: string): Promise<Machine | null> {
    const row = this.#machineByThumbprint(normalizeThumbprint(thumbprint));
    return row ? this.#hydrate([row])[0]! : null;
  }

  async listMachines(filter: MachineFilter = {}): Promise<Machine[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.kind !== undefined) {
      where.push('m.kind = ?');
      params.push(filter.kind);
    }
    if (filter.environment !== undefined) {
      where.push(`EXISTS (SELECT 1 FROM machine_environments l JOIN environments e ON e.id = l.environment_id
                   WHERE l.machine_id = m.id AND lower(e.name) = lower(?))`);
      params.push(filter.environment);
    }
    if (filter.role !== undefined) {
      where.push('EXISTS (SELECT 1 FROM machine_roles r WHERE r.machine_id = m.id AND lower(r.role) = lower(?))');
      params.push(filter.role);
    }
    if (filter.workerPool !== undefined) {
      where.push(`EXISTS (SELECT 1 FROM machine_worker_pools l JOIN worker_pools p ON p.id = l.pool_id
                   WHERE l.machine_id = m.id AND lower(p.name) = lower(?))`);
      params.push(filter.workerPool);
    }
    if (filter.names !== undefined) {
      where.push('lower(m.name) IN (SELECT lower(value) FROM json_each(?))');
      params.push(JSON.stringify(filter.names));
    }
    const sql = `SELECT m.* FROM machines m ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY lower(m.name)`;
    return this.#hydrate(this.#sql(sql).all(...params) as SqliteMachineRow[]);
  }

  async deleteMachine(idOrName: string): Promise<boolean> {
    return this.#write(() => {
      const row = this.#machineRow(idOrName);
      if (!row) return false;
      this.#sql('DELETE FROM machines WHERE id = ?').run(row.id);
      return true;
    });
  }

  async touchMachine(thumbprint: string, touch: MachineTouch): Promise<boolean> {
    const sets = ['last_seen_at = ?'];
    const params: unknown[] = [toTimestamp(touch.lastSeenAt)];
    if (touch.carrier !== undefined) {
      sets.push('carrier = ?');
      params.push(touch.carrier);
    }
    if (touch.version !== undefined) {
      sets.push('tentacle_version = ?');
      params.push(touch.version);
    }
    if (touch.platform !== undefined) {
      sets.push('platform = ?');
      params.push(touch.platform === null ? null : JSON.stringify(touch.platform));
    }
    params.push(normalizeThumbprint(thumbprint));
    const sql = `UPDATE machines SET ${sets.join(', ')} WHERE thumbprint = ?`;
    return this.#write(() => this.#sql(sql).run(...params).changes > 0);
  }

  async recordHealth(machineId: string, health: HealthInput): Promise<HealthCheck> {
    const at = toTimestamp(health.at);
    const details = health.details == null ? null : JSON.stringify(health.details);
    return this.#write(() => {
      const updated = this.#sql('UPDATE machines SET last_health = ?, last_health_at = ? WHERE id = ?').run(
        health.ok ? 'healthy' : 'unhealthy',
        at,
        machineId,
      );
      if (updated.changes === 0) throw new ReefError('REEF_NOT_FOUND', `No machine has id ${machineId}; it may have been deleted.`);
      const row = this.#sql('INSERT INTO health_checks (machine_id, ok, details, at) VALUES (?, ?, ?, ?) RETURNING *').get(
        machineId,
        health.ok ? 1 : 0,
        details,
        at,
      ) as SqliteHealthRow;
      return healthOf(row);
    });
  }

  async listHealth(machineId: string, limit?: number): Promise<HealthCheck[]> {
    const rows = this.#sql('SELECT * FROM health_checks WHERE machine_id = ? ORDER BY id DESC LIMIT ?').all(
      machineId,
      clampLimit(limit, 20, 1000),
    ) as SqliteHealthRow[];
    return rows.map(healthOf);
  }

  // ------------------------------------------------------------ api keys

  async insertApiKey(key: ApiKeyInsert): Promise<ApiKey> {
    const name = checkName('API key name', key.name);
    return this.#write(() => {
      if (this.#sql('SELECT 1 FROM api_keys WHERE prefix = ?').get(key.prefix)) {
        throw new ReefError('REEF_CONFLICT', `An API key with prefix ${key.prefix} exists already; generate a new key.`);
      }
      const row = this.#sql(
        'INSERT INTO api_keys (id, name, prefix, hash, salt, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING *',
      ).get(newId('key'), name, key.prefix, key.hash, key.salt, new Date().toISOString()) as ApiKeyRow;
      return toApiKey(row);
    });
  }

  async getApiKeyCredential(prefix: string): Promise<ApiKeyCredential | null> {
    const row = this.#sql('SELECT * FROM api_keys WHERE prefix = ?').get(prefix) as ApiKeyRow | undefined;
    return row ? { ...toApiKey(row), hash: row.hash, salt: row.salt } : null;
  }

  async listApiKeys(): Promise<ApiKey[]> {
    const rows = this.#sql('SELECT * FROM api_keys ORDER BY created_at, id').all() as ApiKeyRow[];
    return rows.map(toApiKey);
  }

  async revokeApiKey(id: string, at?: TimeInput): Promise<boolean> {
    const when = toTimestamp(at);
    return this.#write(
      () => this.#sql('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(when, id).changes > 0,
    );
  }

  async markApiKeyUsed(id: string, at?: TimeInput): Promise<void> {
    const when = toTimestamp(at);
    this.#write(() => this.#sql('UPDATE api_keys SET last_used_at = ? WHERE id = ?').run(when, id));
  }

  // ------------------------------------------------------------ portal users, sessions

  async insertUser(user: UserInsert): Promise<User> {
    const username = checkName('Username', user.username);
    if (typeof user.passwordHash !== 'string' || user.passwordHash === '') throw invalid('A user needs a password hash.');
    return this.#write(() => {
      if (this.#sql('SELECT 1 FROM users WHERE lower(username) = lower(?)').get(username)) {
        throw new ReefError('REEF_CONFLICT', `A user named "${username}" exists already; choose another name.`);
      }
      const row = this.#sql('INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING *').get(
        newId('user'),
        username,
        user.passwordHash,
        new Date().toISOString(),
      ) as UserRow;
      return toUser(row);
    });
  }

  async getUserCredential(username: string): Promise<UserCredential | null> {
    const row = this.#sql('SELECT * FROM users WHERE lower(username) = lower(?)').get(String(username)) as UserRow | undefined;
    return row ? { ...toUser(row), passwordHash: row.password_hash } : null;
  }

  async countUsers(): Promise<number> {
    return this.#sql('SELECT count(*) FROM users').pluck().get() as number;
  }

  #getSession(idHash: string): SessionRow | undefined {
    return this.#sql(
      'SELECT s.*, u.username FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?',
    ).get(idHash) as SessionRow | undefined;
  }

  async insertSession(session: SessionInsert): Promise<Session> {
    const expiresAt = toTimestamp(session.expiresAt);
    return this.#write(() => {
      if (!this.#sql('SELECT 1 FROM users WHERE id = ?').get(session.userId)) {
        throw new ReefError('REEF_NOT_FOUND', `No user has id "${session.userId}".`);
      }
      this.#sql('INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)').run(
        session.idHash,
        session.userId,
        session.csrfToken,
        new Date().toISOString(),
        expiresAt,
      );
      return toSession(this.#getSession(session.idHash)!);
    });
  }

  async getSession(idHash: string): Promise<Session | null> {
    const row = this.#getSession(String(idHash));
    return row ? toSession(row) : null;
  }

  async deleteSession(idHash: string): Promise<boolean> {
    return this.#write(() => this.#sql('DELETE FROM sessions WHERE id_hash = ?').run(String(idHash)).changes > 0);
  }

  async deleteExpiredSessions(at?: TimeInput): Promise<number> {
    const when = toTimestamp(at);
    return this.#write(() => this.#sql('DELETE FROM sessions WHERE expires_at <= ?').run(when).changes);
  }

  // ------------------------------------------------------------ tasks

  #machinesOf(taskIds: string[]): Map<string, TaskMachine[]> {
    if (taskIds.length === 0) return new Map();
    const rows = this.#sql(
      `SELECT * FROM task_machines WHERE task_id IN (SELECT value FROM json_each(?)) ORDER BY lower(machine_name), machine_id`,
    ).all(JSON.stringify(taskIds)) as TaskMachineRow[];
    return groupBy(rows.map(toTaskMachine), (m) => m.taskId);
  }

  #withMachines(rows: SqliteTaskRow[]): TaskWithMachines[] {
    const machines = this.#machinesOf(rows.map((r) => r.id));
    return rows.map((r) => ({ ...taskOf(r), machines: machines.get(r.id) ?? [] }));
  }

  /** Distinguishes "no such task" (throws) from "not in the right state" (false). */
  #transitioned(changes: number, taskId: string, machineId?: string): boolean {
    if (changes > 0) return true;
    if (machineId === undefined) {
      if (!this.#sql('SELECT 1 FROM tasks WHERE id = ?').get(taskId)) {
        throw new ReefError('REEF_NOT_FOUND', `No task has id ${taskId}.`);
      }
    } else if (!this.#sql('SELECT 1 FROM task_machines WHERE task_id = ? AND machine_id = ?').get(taskId, machineId)) {
      throw new ReefError('REEF_NOT_FOUND', `Task ${taskId} has no machine ${machineId}.`);
    }
    return false;
  }

  async createTask(input: TaskInput): Promise<TaskWithMachines> {
    const kind = checkTaskKind(input.kind);
    const spec = JSON.stringify(input.spec ?? {});
    const target = JSON.stringify(input.target ?? {});
    const machineIds = [...new Set(input.machineIds)];
    return this.#write(() => {
      const machines = this.#sql('SELECT id, name FROM machines WHERE id IN (SELECT value FROM json_each(?))').all(
        JSON.stringify(machineIds),
      ) as { id: string; name: string }[];
      if (machines.length !== machineIds.length) {
        const found = new Set(machines.map((m) => m.id));
        const missing = machineIds.filter((id) => !found.has(id));
        throw new ReefError(
          'REEF_NOT_FOUND',
          `Cannot create the task: no machine has id ${missing.join(', ')}. It may have been deleted; list machines again.`,
        );
      }
      const num = this.#sql(`UPDATE counters SET value = value + 1 WHERE name = 'task' RETURNING value`)
        .pluck()
        .get() as number;
      const id = taskIdOf(num);
      this.#sql(
        `INSERT INTO tasks (id, num, kind, spec, target, state, created_at) VALUES (?, ?, ?, ?, ?, 'Queued', ?)`,
      ).run(id, num, kind, spec, target, new Date().toISOString());
      const insert = this.#sql(
        `INSERT INTO task_machines (task_id, machine_id, machine_name, state, ticket) VALUES (?, ?, ?, 'Pending', ?)`,
      );
      for (const m of machines) insert.run(id, m.id, m.name, newTicket());
      return this.#withMachines([this.#sql('SELECT * FROM tasks WHERE id = ?').get(id) as SqliteTaskRow])[0]!;
    });
  }

  async getTask(id: string): Promise<TaskWithMachines | null> {
    const row = this.#sql('SELECT * FROM tasks WHERE id = ?').get(id) as SqliteTaskRow | undefined;
    return row ? this.#withMachines([row])[0]! : null;
  }

  async getTaskMachineByTicket(ticket: string): Promise<TaskMachine | null> {
    const row = this.#sql('SELECT * FROM task_machines WHERE ticket = ?').get(ticket) as TaskMachineRow | undefined;
    return row ? toTaskMachine(row) : null;
  }

  async listTasks(filter: TaskFilter = {}): Promise<Task[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.state !== undefined) {
      where.push('state = ?');
      params.push(filter.state);
    }
    if (filter.before !== undefined) {
      const num = taskNumOf(filter.before);
      if (num === null) throw invalid(`"${filter.before}" is not a task id (expected T-000123).`);
      where.push('num < ?');
      params.push(num);
    }
    params.push(clampLimit(filter.limit, 50, 1000));
    const sql = `SELECT * FROM tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY num DESC LIMIT ?`;
    return (this.#sql(sql).all(...params) as SqliteTaskRow[]).map(taskOf);
  }

  async listUnfinishedTasks(): Promise<TaskWithMachines[]> {
    const rows = this.#sql(`SELECT * FROM tasks WHERE state IN ${UNFINISHED_TASK} ORDER BY num`).all() as SqliteTaskRow[];
    return this.#withMachines(rows);
  }

  async startTask(taskId: string, at?: TimeInput): Promise<boolean> {
    const when = toTimestamp(at);
    return this.#write(() =>
      this.#transitioned(
        this.#sql(`UPDATE tasks SET state = 'Running', started_at = ? WHERE id = ? AND state = 'Queued'`).run(when, taskId)
          .changes,
        taskId,
      ),
    );
  }

  async finishTask(taskId: string, finish: FinishTask): Promise<boolean> {
    const state = checkFinalState(finish.state);
    const when = toTimestamp(finish.at);
    return this.#write(() =>
      this.#transitioned(
        this.#sql(
          `UPDATE tasks SET state = ?, finished_at = ?, error = ? WHERE id = ? AND state IN ${UNFINISHED_TASK}`,
        ).run(state, when, finish.error ?? null, taskId).changes,
        taskId,
      ),
    );
  }

  async requestCancel(taskId: string, at?: TimeInput): Promise<boolean> {
    const when = toTimestamp(at);
    return this.#write(() =>
      this.#transitioned(
        this.#sql(
          `UPDATE tasks SET cancel_requested_at = ?
           WHERE id = ? AND state IN ${UNFINISHED_TASK} AND cancel_requested_at IS NULL`,
        ).run(when, taskId).changes,
        taskId,
      ),
    );
  }

  async startTaskMachine(taskId: string, machineId: string, at?: TimeInput): Promise<boolean> {
    const when = toTimestamp(at);
    return this.#write(() =>
      this.#transitioned(
        this.#sql(
          `UPDATE task_machines SET state = 'Running', started_at = ?
           WHERE task_id = ? AND machine_id = ? AND state = 'Pending'`,
        ).run(when, taskId, machineId).changes,
        taskId,
        machineId,
      ),
    );
  }

  async finishTaskMachine(taskId: string, machineId: string, finish: FinishTaskMachine): Promise<boolean> {
    const state = checkFinalState(finish.state);
    const when = toTimestamp(finish.at);
    if (finish.exitCode != null && !Number.isInteger(finish.exitCode)) {
      throw invalid(`exitCode must be an integer, got ${finish.exitCode}.`);
    }
    return this.#write(() =>
      this.#transitioned(
        this.#sql(
          `UPDATE task_machines SET state = ?, exit_code = ?, error = ?, finished_at = ?
           WHERE task_id = ? AND machine_id = ? AND state IN ${UNFINISHED_MACHINE}`,
        ).run(state, finish.exitCode ?? null, finish.error ?? null, when, taskId, machineId).changes,
        taskId,
        machineId,
      ),
    );
  }

  // ------------------------------------------------------------ task log

  /** Reserves `count` sequence numbers for the task; returns the first. */
  #reserveSeqs(taskId: string, count: number): number {
    const last = this.#sql('UPDATE tasks SET log_seq = log_seq + ? WHERE id = ? RETURNING log_seq').pluck().get(count, taskId) as
      | number
      | undefined;
    if (last === undefined) throw new ReefError('REEF_NOT_FOUND', `No task has id ${taskId}.`);
    return last - count + 1;
  }

  #insertLog(row: LogRow): void {
    this.#sql('INSERT INTO task_log (task_id, seq, machine_id, at, stream, text) VALUES (?, ?, ?, ?, ?, ?)').run(
      row.task_id,
      row.seq,
      row.machine_id,
      row.at,
      row.stream,
      row.text,
    );
  }

  async appendMachineLog(taskId: string, machineId: string, lines: TentacleLogLine[]): Promise<LogLine[]> {
    const checked = lines.map((l) => {
      if (!Number.isSafeInteger(l.tentacleSeq) || l.tentacleSeq < 1) {
        throw invalid(`tentacleSeq must be a positive integer, got ${l.tentacleSeq}.`);
      }
      if (typeof l.text !== 'string') throw invalid('Log text must be a string.');
      return { tentacleSeq: l.tentacleSeq, at: toTimestamp(l.at), stream: checkStream(l.stream), text: l.text };
    });
    checked.sort((a, b) => a.tentacleSeq - b.tentacleSeq);
    return this.#write(() => {
      const cursor = this.#sql('SELECT log_cursor FROM task_machines WHERE task_id = ? AND machine_id = ?')
        .pluck()
        .get(taskId, machineId) as number | undefined;
      if (cursor === undefined) throw new ReefError('REEF_NOT_FOUND', `Task ${taskId} has no machine ${machineId}.`);
      const fresh: typeof checked = [];
      let high = cursor;
      for (const line of checked) {
        if (line.tentacleSeq <= high) continue;
        fresh.push(line);
        high = line.tentacleSeq;
      }
      if (fresh.length === 0) return [];
      const first = this.#reserveSeqs(taskId, fresh.length);
      const rows = fresh.map(
        (l, i): LogRow => ({ task_id: taskId, seq: first + i, machine_id: machineId, at: l.at, stream: l.stream, text: l.text }),
      );
      for (const row of rows) this.#insertLog(row);
      this.#sql('UPDATE task_machines SET log_cursor = ? WHERE task_id = ? AND machine_id = ?').run(high, taskId, machineId);
      return rows.map(toLogLine);
    });
  }

  async appendTaskLog(
    taskId: string,
    machineId: string | null,
    stream: LogStream,
    text: string,
    at?: TimeInput,
  ): Promise<LogLine> {
    const row: Omit<LogRow, 'seq'> = {
      task_id: taskId,
      machine_id: machineId,
      at: toTimestamp(at),
      stream: checkStream(stream),
      text: String(text),
    };
    return this.#write(() => {
      const full: LogRow = { ...row, seq: this.#reserveSeqs(taskId, 1) };
      this.#insertLog(full);
      return toLogLine(full);
    });
  }

  async readLog(taskId: string, afterSeq = 0, limit?: number): Promise<LogLine[]> {
    const rows = this.#sql('SELECT * FROM task_log WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?').all(
      taskId,
      afterSeq,
      clampLimit(limit, 1000, 10000),
    ) as LogRow[];
    return rows.map(toLogLine);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#statements.clear();
    this.#db.close();
  }
}

import pg from 'pg';
import { ReefError } from '../../../errors.js';
import { normalizeThumbprint } from '../../../pki/thumbprint.js';
import { newId, newTicket, taskIdOf, taskNumOf } from '../ids.js';
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
} from '../input.js';
import type {
  ApiKey,
  ApiKeyCredential,
  ApiKeyInsert,
  Environment,
  FinishTask,
  FinishTaskMachine,
  HealthCheck,
  HealthInput,
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
} from '../types.js';
import { APPEND_MACHINE_LINES, APPEND_TASK_LINE, LOCK_MACHINE_CURSOR, READ_LOG } from './log.js';
import { PostgresCoordination } from './coordination.js';
import { migratePostgres } from './migrate.js';
import { pgJson, pgText, typeParsers } from './rows.js';
import {
  fold,
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
  type NamedRow,
  type SessionRow,
  type TaskMachineRow,
  type TaskRow,
  type UserRow,
} from '../rows.js';

export interface PostgresStoreOptions {
  /**
   * Most connections this node keeps open. Default 10: every store call holds one for a
   * few round trips only, and several nodes share the server's max_connections (100 by
   * default).
   */
  poolSize?: number;
  /** How long a call waits for a free connection, or for a new one to open. Default 10000 ms. */
  connectTimeoutMs?: number;
  /** An idle connection is closed after this long. Default 30000 ms. */
  idleTimeoutMs?: number;
  /** Shown in pg_stat_activity, so an operator can tell nodes apart. Default `reef`. */
  applicationName?: string;
  /**
   * Called when an idle pooled connection fails (the database restarted, a proxy cut it).
   * The pool drops that connection and the next call opens a new one. Default: ignore.
   */
  onIdleError?: (err: Error) => void;
}

/**
 * Opens a PostgreSQL store and brings its schema up to date (several nodes may do this at
 * once: migrations run under an advisory lock).
 *
 * Each method is one statement where it can be, else one short transaction. Races between
 * nodes end as they do on SQLite: a unique or foreign-key violation from a concurrent
 * writer retries the whole transaction, which then sees the committed row and answers as
 * if the two calls had run one after the other.
 */
export async function createPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<Store> {
  const pool = new pg.Pool({
    connectionString: url,
    max: Math.max(1, Math.floor(options.poolSize ?? 10)),
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    idleTimeoutMillis: options.idleTimeoutMs ?? 30_000,
    application_name: options.applicationName ?? 'reef',
    types: typeParsers,
  });
  const onIdleError = options.onIdleError ?? (() => undefined);
  pool.on('error', onIdleError);
  try {
    const client = await pool.connect().catch((err: unknown) => {
      throw unreachable(url, err, 'REEF_STORE_OPEN_FAILED');
    });
    let broken: Error | undefined;
    try {
      await migratePostgres(client);
    } catch (err) {
      broken = err instanceof Error ? err : new Error(String(err));
      throw err;
    } finally {
      client.release(broken);
    }
  } catch (err) {
    await pool.end();
    throw err;
  }
  return new PostgresStore(pool, url);
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unparsable PostgreSQL URL)';
  }
}

function unreachable(url: string, err: unknown, code: string): ReefError {
  return new ReefError(
    code,
    `Cannot connect to PostgreSQL at ${redactUrl(url)}: ${err instanceof Error ? err.message : String(err)}. ` +
      `Check that the server runs, that the URL's host, port, user and database are right, and that ` +
      `pg_hba.conf lets this host in.`,
    { cause: err },
  );
}

// ---------------------------------------------------------------- plumbing

/** What a method body runs its SQL on: the pool, or the client of its transaction. */
export interface Db {
  rows<R>(sql: string, params?: unknown[]): Promise<R[]>;
  one<R>(sql: string, params?: unknown[]): Promise<R | undefined>;
  run(sql: string, params?: unknown[]): Promise<number>;
}

/** Text parameters lose U+0000 (see pgText); everything else passes as is. */
function clean(params: unknown[]): unknown[] {
  return params.map((p) =>
    typeof p === 'string' ? pgText(p) : Array.isArray(p) ? p.map((x) => (typeof x === 'string' ? pgText(x) : x)) : p,
  );
}

function dbOn(target: pg.Pool | pg.PoolClient): Db {
  const query = (sql: string, params: unknown[] = []): Promise<pg.QueryResult> =>
    (target as pg.ClientBase).query(sql, clean(params));
  return {
    rows: async <R>(sql: string, params?: unknown[]) => (await query(sql, params)).rows as R[],
    one: async <R>(sql: string, params?: unknown[]) => (await query(sql, params)).rows[0] as R | undefined,
    run: async (sql: string, params?: unknown[]) => (await query(sql, params)).rowCount ?? 0,
  };
}

/**
 * A concurrent writer on another connection (another node) made this transaction fail in a
 * way that a fresh attempt resolves: unique_violation, foreign_key_violation,
 * serialization_failure, deadlock_detected.
 */
const RETRYABLE = new Set(['23505', '23503', '40001', '40P01']);
const ATTEMPTS = 5;

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Errors from the driver that mean "no connection", as opposed to a failed statement. */
function isConnectionError(err: unknown): boolean {
  const code = sqlState(err);
  return (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'ENOTFOUND' ||
    code === 'ETIMEDOUT' ||
    code === '57P01' || // admin_shutdown
    code === '57P03' || // cannot_connect_now
    (err instanceof Error && /timeout exceeded when trying to connect|Connection terminated/i.test(err.message))
  );
}


const UNFINISHED_TASK = `('Queued', 'Running')`;
const UNFINISHED_MACHINE = `('Pending', 'Running')`;

/**
 * One round trip for a state transition: whether the UPDATE changed a row, and whether the
 * row exists at all (false + present = wrong state; false + absent = REEF_NOT_FOUND).
 */
function transition(update: string, exists: string): string {
  return `WITH changed AS (${update} RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM changed) AS changed, EXISTS (${exists}) AS present`;
}

// ---------------------------------------------------------------- the store

class PostgresStore implements Store {
  readonly #pool: pg.Pool;
  readonly #url: string;
  readonly #db: Db;
  readonly coordination: PostgresCoordination;
  #closed = false;

  constructor(pool: pg.Pool, url: string) {
    this.#pool = pool;
    this.#url = url;
    this.#db = this.#guard(dbOn(pool));
    this.coordination = new PostgresCoordination(this.#db, (fn) => this.#tx(fn));
  }

  #checkOpen(): void {
    if (this.#closed) throw new ReefError('REEF_STORE_CLOSED', 'The store was closed; open a new one.');
  }

  #translate(err: unknown): unknown {
    if (err instanceof ReefError || !isConnectionError(err)) return err;
    return unreachable(this.#url, err, 'REEF_STORE_UNAVAILABLE');
  }

  /** The pool's Db, refusing calls after close and naming the database when it is gone. */
  #guard(db: Db): Db {
    const wrap =
      <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
      async (...args: A): Promise<R> => {
        this.#checkOpen();
        try {
          return await fn(...args);
        } catch (err) {
          throw this.#translate(err);
        }
      };
    return { rows: wrap(db.rows), one: wrap(db.one), run: wrap(db.run) } as Db;
  }

  /** Runs fn in a READ COMMITTED transaction, again from the start after a retryable race. */
  async #tx<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    this.#checkOpen();
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.#pool.connect();
      } catch (err) {
        throw this.#translate(err);
      }
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await fn(dbOn(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: Error) => {
          broken = rollbackErr;
        });
        if (attempt < ATTEMPTS && RETRYABLE.has(sqlState(err) ?? '') && !this.#closed) continue;
        throw this.#translate(err);
      } finally {
        client.release(broken);
      }
    }
  }

  // ------------------------------------------------------------ environments, pools

  async #ensureNamed(db: Db, table: 'environments' | 'worker_pools', idPrefix: 'env' | 'pool', name: string): Promise<NamedRow> {
    // DO NOTHING waits for a concurrent insert of the same name; the SELECT (a new statement,
    // so a new snapshot) then sees whichever row won.
    await db.run(
      `INSERT INTO ${table} (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (lower(name)) DO NOTHING`,
      [newId(idPrefix), name, new Date().toISOString()],
    );
    return (await db.one<NamedRow>(`SELECT id, name, created_at FROM ${table} WHERE lower(name) = $1`, [fold(name)]))!;
  }

  #getNamed(db: Db, table: 'environments' | 'worker_pools', idOrName: string): Promise<NamedRow | undefined> {
    // An id match wins over a name that happens to look like an id.
    return db.one<NamedRow>(
      `SELECT id, name, created_at FROM ${table} WHERE id = $1 OR lower(name) = $2 ORDER BY id = $1 DESC LIMIT 1`,
      [idOrName, fold(idOrName)],
    );
  }

  async #deleteNamed(table: 'environments' | 'worker_pools', idOrName: string): Promise<boolean> {
    const [what, link, column, hint] =
      table === 'environments'
        ? ['Environment', 'machine_environments', 'environment_id', 'Move or delete those machines first.']
        : ['Worker pool', 'machine_worker_pools', 'pool_id', 'Move or delete those workers first.'];
    return this.#tx(async (db) => {
      const row = await this.#getNamed(db, table, idOrName);
      if (!row) return false;
      const users = (
        await db.rows<{ name: string }>(
          `SELECT m.name FROM ${link} l JOIN machines m ON m.id = l.machine_id WHERE l.${column} = $1 ORDER BY lower(m.name)`,
          [row.id],
        )
      ).map((r) => r.name);
      if (users.length > 0) {
        const shown = users.slice(0, 10).join(', ') + (users.length > 10 ? `, and ${users.length - 10} more` : '');
        throw new ReefError('REEF_IN_USE', `${what} "${row.name}" still has ${users.length} machine(s): ${shown}. ${hint}`);
      }
      // A machine joining meanwhile makes this fail on the RESTRICT key; the retry reports it.
      await db.run(`DELETE FROM ${table} WHERE id = $1`, [row.id]);
      return true;
    });
  }

  async ensureEnvironment(name: string): Promise<Environment> {
    const checked = checkName('Environment name', name);
    return named(await this.#tx((db) => this.#ensureNamed(db, 'environments', 'env', checked)));
  }

  async getEnvironment(idOrName: string): Promise<Environment | null> {
    const row = await this.#getNamed(this.#db, 'environments', idOrName);
    return row ? named(row) : null;
  }

  async listEnvironments(): Promise<Environment[]> {
    return (await this.#db.rows<NamedRow>('SELECT id, name, created_at FROM environments ORDER BY lower(name)')).map(named);
  }

  async deleteEnvironment(idOrName: string): Promise<boolean> {
    return this.#deleteNamed('environments', idOrName);
  }

  async ensureWorkerPool(name: string): Promise<WorkerPool> {
    const checked = checkName('Worker pool name', name);
    return named(await this.#tx((db) => this.#ensureNamed(db, 'worker_pools', 'pool', checked)));
  }

  async getWorkerPool(idOrName: string): Promise<WorkerPool | null> {
    const row = await this.#getNamed(this.#db, 'worker_pools', idOrName);
    return row ? named(row) : null;
  }

  async listWorkerPools(): Promise<WorkerPool[]> {
    return (await this.#db.rows<NamedRow>('SELECT id, name, created_at FROM worker_pools ORDER BY lower(name)')).map(named);
  }

  async deleteWorkerPool(idOrName: string): Promise<boolean> {
    return this.#deleteNamed('worker_pools', idOrName);
  }

  // ------------------------------------------------------------ machines

  /** Machines with their environments, roles and pools, in one more query whatever the count. */
  async #hydrate(db: Db, rows: MachineRow[]): Promise<Machine[]> {
    if (rows.length === 0) return [];
    type Member = { machine_id: string; what: 'env' | 'role' | 'pool'; name: string };
    const members = await db.rows<Member>(
      `SELECT l.machine_id, 'env' AS what, e.name FROM machine_environments l
         JOIN environments e ON e.id = l.environment_id WHERE l.machine_id = ANY($1::text[])
       UNION ALL
       SELECT machine_id, 'role', role FROM machine_roles WHERE machine_id = ANY($1::text[])
       UNION ALL
       SELECT l.machine_id, 'pool', p.name FROM machine_worker_pools l
         JOIN worker_pools p ON p.id = l.pool_id WHERE l.machine_id = ANY($1::text[])`,
      [rows.map((r) => r.id)],
    );
    const of = (what: Member['what']) => members.filter((m) => m.what === what);
    return toMachines(rows, of('env'), of('role'), of('pool'));
  }

  #machineRow(db: Db, idOrName: string): Promise<MachineRow | undefined> {
    return db.one<MachineRow>('SELECT * FROM machines WHERE id = $1 OR lower(name) = $2 ORDER BY id = $1 DESC LIMIT 1', [
      idOrName,
      fold(idOrName),
    ]);
  }

  #machineByThumbprint(db: Db, thumbprint: string): Promise<MachineRow | undefined> {
    return db.one<MachineRow>('SELECT * FROM machines WHERE thumbprint = $1', [thumbprint]);
  }

  async #loadMachine(db: Db, id: string): Promise<Machine> {
    const row = (await db.one<MachineRow>('SELECT * FROM machines WHERE id = $1', [id]))!;
    return (await this.#hydrate(db, [row]))[0]!;
  }

  async #setMemberships(db: Db, machineId: string, m: CheckedMachine): Promise<void> {
    await db.run('DELETE FROM machine_environments WHERE machine_id = $1', [machineId]);
    await db.run('DELETE FROM machine_roles WHERE machine_id = $1', [machineId]);
    await db.run('DELETE FROM machine_worker_pools WHERE machine_id = $1', [machineId]);
    for (const name of m.environments) {
      const env = await this.#ensureNamed(db, 'environments', 'env', name);
      await db.run('INSERT INTO machine_environments (machine_id, environment_id) VALUES ($1, $2)', [machineId, env.id]);
    }
    if (m.roles.length > 0) {
      await db.run('INSERT INTO machine_roles (machine_id, role) SELECT $1, unnest($2::text[])', [machineId, m.roles]);
    }
    for (const name of m.workerPools) {
      const pool = await this.#ensureNamed(db, 'worker_pools', 'pool', name);
      await db.run('INSERT INTO machine_worker_pools (machine_id, pool_id) VALUES ($1, $2)', [machineId, pool.id]);
    }
  }

  async #insertMachine(db: Db, m: CheckedMachine): Promise<string> {
    const id = newId('m');
    await db.run(
      `INSERT INTO machines (id, name, kind, thumbprint, comms_style, endpoint_host, endpoint_port,
         tentacle_version, platform, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [
        id,
        m.name,
        m.kind,
        m.thumbprint,
        m.commsStyle,
        m.endpoint?.host ?? null,
        m.endpoint?.port ?? null,
        m.tentacleVersion,
        pgJson(m.platform),
        new Date().toISOString(),
      ],
    );
    await this.#setMemberships(db, id, m);
    return id;
  }

  async createMachine(input: MachineInput): Promise<Machine> {
    const m = checkMachineInput(input);
    return this.#tx(async (db) => {
      const byThumbprint = await this.#machineByThumbprint(db, m.thumbprint);
      if (byThumbprint) {
        throw new ReefError(
          'REEF_CONFLICT',
          `A machine with thumbprint ${m.thumbprint} is already registered as "${byThumbprint.name}" (${byThumbprint.id}). ` +
            `Register again with --force to replace it, or deregister it first.`,
        );
      }
      const byName = await db.one<{ id: string; thumbprint: string }>(
        'SELECT id, thumbprint FROM machines WHERE lower(name) = $1',
        [fold(m.name)],
      );
      if (byName) {
        throw new ReefError(
          'REEF_CONFLICT',
          `The machine name "${m.name}" is already used by ${byName.id} (thumbprint ${byName.thumbprint}). ` +
            `Choose another --name, or register with --force to replace that machine.`,
        );
      }
      return this.#loadMachine(db, await this.#insertMachine(db, m));
    });
  }

  async upsertMachine(input: MachineInput): Promise<{ machine: Machine; created: boolean }> {
    const m = checkMachineInput(input);
    return this.#tx(async (db) => {
      const byThumbprint = await this.#machineByThumbprint(db, m.thumbprint);
      const byName = await db.one<MachineRow>('SELECT * FROM machines WHERE lower(name) = $1', [fold(m.name)]);
      if (byThumbprint && byName && byThumbprint.id !== byName.id) {
        throw new ReefError(
          'REEF_CONFLICT',
          `Thumbprint ${m.thumbprint} belongs to machine "${byThumbprint.name}" (${byThumbprint.id}) but the name ` +
            `"${m.name}" belongs to another machine (${byName.id}). Deregister one of them, or choose another --name.`,
        );
      }
      const existing = byThumbprint ?? byName;
      if (!existing) return { machine: await this.#loadMachine(db, await this.#insertMachine(db, m)), created: true };
      await db.run(
        `UPDATE machines SET name = $1, kind = $2, thumbprint = $3, comms_style = $4, endpoint_host = $5, endpoint_port = $6,
           tentacle_version = coalesce($7, tentacle_version), platform = coalesce($8::json, platform)
         WHERE id = $9`,
        [
          m.name,
          m.kind,
          m.thumbprint,
          m.commsStyle,
          m.endpoint?.host ?? null,
          m.endpoint?.port ?? null,
          m.tentacleVersion,
          pgJson(m.platform),
          existing.id,
        ],
      );
      await this.#setMemberships(db, existing.id, m);
      return { machine: await this.#loadMachine(db, existing.id), created: false };
    });
  }

  async getMachine(idOrName: string): Promise<Machine | null> {
    const row = await this.#machineRow(this.#db, idOrName);
    return row ? (await this.#hydrate(this.#db, [row]))[0]! : null;
  }

  async getMachineByThumbprint(thumbprint: string): Promise<Machine | null> {
    const row = await this.#machineByThumbprint(this.#db, normalizeThumbprint(thumbprint));
    return row ? (await this.#hydrate(this.#db, [row]))[0]! : null;
  }

  async listMachines(filter: MachineFilter = {}): Promise<Machine[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown): string => `$${params.push(value)}`;
    if (filter.kind !== undefined) where.push(`m.kind = ${param(filter.kind)}`);
    if (filter.environment !== undefined) {
      where.push(`EXISTS (SELECT 1 FROM machine_environments l JOIN environments e ON e.id = l.environment_id
                   WHERE l.machine_id = m.id AND lower(e.name) = ${param(fold(filter.environment))})`);
    }
    if (filter.role !== undefined) {
      where.push(
        `EXISTS (SELECT 1 FROM machine_roles r WHERE r.machine_id = m.id AND lower(r.role) = ${param(fold(filter.role))})`,
      );
    }
    if (filter.workerPool !== undefined) {
      where.push(`EXISTS (SELECT 1 FROM machine_worker_pools l JOIN worker_pools p ON p.id = l.pool_id
                   WHERE l.machine_id = m.id AND lower(p.name) = ${param(fold(filter.workerPool))})`);
    }
    if (filter.names !== undefined) where.push(`lower(m.name) = ANY(${param(filter.names.map(fold))}::text[])`);
    const sql = `SELECT m.* FROM machines m ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY lower(m.name)`;
    return this.#hydrate(this.#db, await this.#db.rows<MachineRow>(sql, params));
  }

  async deleteMachine(idOrName: string): Promise<boolean> {
    return this.#tx(async (db) => {
      const row = await this.#machineRow(db, idOrName);
      if (!row) return false;
      return (await db.run('DELETE FROM machines WHERE id = $1', [row.id])) > 0;
    });
  }

  async touchMachine(thumbprint: string, touch: MachineTouch): Promise<boolean> {
    const params: unknown[] = [];
    const param = (value: unknown): string => `$${params.push(value)}`;
    const sets = [`last_seen_at = ${param(toTimestamp(touch.lastSeenAt))}`];
    if (touch.carrier !== undefined) sets.push(`carrier = ${param(touch.carrier)}`);
    if (touch.version !== undefined) sets.push(`tentacle_version = ${param(touch.version)}`);
    if (touch.platform !== undefined) sets.push(`platform = ${param(pgJson(touch.platform))}::json`);
    const sql = `UPDATE machines SET ${sets.join(', ')} WHERE thumbprint = ${param(normalizeThumbprint(thumbprint))}`;
    return (await this.#db.run(sql, params)) > 0;
  }

  async recordHealth(machineId: string, health: HealthInput): Promise<HealthCheck> {
    const at = toTimestamp(health.at);
    const row = await this.#db.one<HealthRow>(
      `WITH m AS (
         UPDATE machines SET last_health = $2, last_health_at = $3 WHERE id = $1 RETURNING id
       )
       INSERT INTO health_checks (machine_id, ok, details, at)
       SELECT id, $4, $5::json, $3 FROM m RETURNING *`,
      [machineId, health.ok ? 'healthy' : 'unhealthy', at, health.ok, pgJson(health.details ?? null)],
    );
    if (!row) throw new ReefError('REEF_NOT_FOUND', `No machine has id ${machineId}; it may have been deleted.`);
    return toHealth(row);
  }

  async listHealth(machineId: string, limit?: number): Promise<HealthCheck[]> {
    const rows = await this.#db.rows<HealthRow>('SELECT * FROM health_checks WHERE machine_id = $1 ORDER BY id DESC LIMIT $2', [
      machineId,
      clampLimit(limit, 20, 1000),
    ]);
    return rows.map(toHealth);
  }

  // ------------------------------------------------------------ api keys

  async insertApiKey(key: ApiKeyInsert): Promise<ApiKey> {
    const name = checkName('API key name', key.name);
    return this.#tx(async (db) => {
      if (await db.one('SELECT 1 FROM api_keys WHERE prefix = $1', [key.prefix])) {
        throw new ReefError('REEF_CONFLICT', `An API key with prefix ${key.prefix} exists already; generate a new key.`);
      }
      const row = await db.one<ApiKeyRow>(
        'INSERT INTO api_keys (id, name, prefix, hash, salt, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *',
        [newId('key'), name, key.prefix, key.hash, key.salt, new Date().toISOString()],
      );
      return toApiKey(row!);
    });
  }

  async getApiKeyCredential(prefix: string): Promise<ApiKeyCredential | null> {
    const row = await this.#db.one<ApiKeyRow>('SELECT * FROM api_keys WHERE prefix = $1', [prefix]);
    return row ? { ...toApiKey(row), hash: row.hash, salt: row.salt } : null;
  }

  async listApiKeys(): Promise<ApiKey[]> {
    return (await this.#db.rows<ApiKeyRow>('SELECT * FROM api_keys ORDER BY created_at, id')).map(toApiKey);
  }

  async revokeApiKey(id: string, at?: TimeInput): Promise<boolean> {
    const when = toTimestamp(at);
    return (await this.#db.run('UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [when, id])) > 0;
  }

  async markApiKeyUsed(id: string, at?: TimeInput): Promise<void> {
    const when = toTimestamp(at);
    await this.#db.run('UPDATE api_keys SET last_used_at = $1 WHERE id = $2', [when, id]);
  }

  // ------------------------------------------------------------ portal users, sessions

  async insertUser(user: UserInsert): Promise<User> {
    const username = checkName('Username', user.username);
    if (typeof user.passwordHash !== 'string' || user.passwordHash === '') throw invalid('A user needs a password hash.');
    return this.#tx(async (db) => {
      if (await db.one('SELECT 1 FROM users WHERE lower(username) = $1', [fold(username)])) {
        throw new ReefError('REEF_CONFLICT', `A user named "${username}" exists already; choose another name.`);
      }
      const row = await db.one<UserRow>(
        'INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING *',
        [newId('user'), username, user.passwordHash, new Date().toISOString()],
      );
      return toUser(row!);
    });
  }

  async getUserCredential(username: string): Promise<UserCredential | null> {
    const row = await this.#db.one<UserRow>('SELECT * FROM users WHERE lower(username) = $1', [fold(String(username))]);
    return row ? { ...toUser(row), passwordHash: row.password_hash } : null;
  }

  async countUsers(): Promise<number> {
    return (await this.#db.one<{ count: number }>('SELECT count(*) AS count FROM users'))!.count;
  }

  #getSession(db: Db, idHash: string): Promise<SessionRow | undefined> {
    return db.one<SessionRow>('SELECT s.*, u.username FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1', [
      idHash,
    ]);
  }

  async insertSession(session: SessionInsert): Promise<Session> {
    const expiresAt = toTimestamp(session.expiresAt);
    return this.#tx(async (db) => {
      // A user deleted meanwhile fails the foreign key; the retry lands here.
      if (!(await db.one('SELECT 1 FROM users WHERE id = $1', [session.userId]))) {
        throw new ReefError('REEF_NOT_FOUND', `No user has id "${session.userId}".`);
      }
      await db.run('INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)', [
        session.idHash,
        session.userId,
        session.csrfToken,
        new Date().toISOString(),
        expiresAt,
      ]);
      return toSession((await this.#getSession(db, session.idHash))!);
    });
  }

  async getSession(idHash: string): Promise<Session | null> {
    const row = await this.#getSession(this.#db, String(idHash));
    return row ? toSession(row) : null;
  }

  async deleteSession(idHash: string): Promise<boolean> {
    return (await this.#db.run('DELETE FROM sessions WHERE id_hash = $1', [String(idHash)])) > 0;
  }

  async deleteExpiredSessions(at?: TimeInput): Promise<number> {
    const when = toTimestamp(at);
    return this.#db.run('DELETE FROM sessions WHERE expires_at <= $1', [when]);
  }

  // ------------------------------------------------------------ tasks

  async #withMachines(db: Db, rows: TaskRow[]): Promise<TaskWithMachines[]> {
    if (rows.length === 0) return [];
    const machineRows = await db.rows<TaskMachineRow>(
      'SELECT * FROM task_machines WHERE task_id = ANY($1::text[]) ORDER BY lower(machine_name), machine_id',
      [rows.map((r) => r.id)],
    );
    const machines = groupBy(machineRows.map(toTaskMachine), (m) => m.taskId);
    return rows.map((r) => ({ ...toTask(r), machines: machines.get(r.id) ?? [] }));
  }

  /** Runs a `transition()` query; throws REEF_NOT_FOUND when the row does not exist. */
  async #transition(sql: string, params: unknown[], taskId: string, machineId?: string): Promise<boolean> {
    const row = (await this.#db.one<{ changed: boolean; present: boolean }>(sql, params))!;
    if (row.changed) return true;
    if (!row.present) {
      throw new ReefError(
        'REEF_NOT_FOUND',
        machineId === undefined ? `No task has id ${taskId}.` : `Task ${taskId} has no machine ${machineId}.`,
      );
    }
    return false;
  }

  async createTask(input: TaskInput): Promise<TaskWithMachines> {
    const kind = checkTaskKind(input.kind);
    const spec = pgJson(input.spec ?? {});
    const target = pgJson(input.target ?? {});
    const machineIds = [...new Set(input.machineIds)];
    return this.#tx(async (db) => {
      const machines = await db.rows<{ id: string; name: string }>('SELECT id, name FROM machines WHERE id = ANY($1::text[])', [
        machineIds,
      ]);
      if (machines.length !== machineIds.length) {
        const found = new Set(machines.map((m) => m.id));
        const missing = machineIds.filter((id) => !found.has(id));
        throw new ReefError(
          'REEF_NOT_FOUND',
          `Cannot create the task: no machine has id ${missing.join(', ')}. It may have been deleted; list machines again.`,
        );
      }
      // The counter row's lock queues concurrent creations from every node: numbers stay gap-free.
      const { value: num } = (await db.one<{ value: number }>(
        `UPDATE counters SET value = value + 1 WHERE name = 'task' RETURNING value`,
      ))!;
      const id = taskIdOf(num);
      const task = (await db.one<TaskRow>(
        `INSERT INTO tasks (id, num, kind, spec, target, state, created_at)
         VALUES ($1, $2, $3, $4::json, $5::json, 'Queued', $6) RETURNING *`,
        [id, num, kind, spec, target, new Date().toISOString()],
      ))!;
      if (machines.length > 0) {
        await db.run(
          `INSERT INTO task_machines (task_id, machine_id, machine_name, state, ticket)
           SELECT $1, m.id, m.name, 'Pending', m.ticket FROM unnest($2::text[], $3::text[], $4::text[]) AS m (id, name, ticket)`,
          [id, machines.map((m) => m.id), machines.map((m) => m.name), machines.map(() => newTicket())],
        );
      }
      return (await this.#withMachines(db, [task]))[0]!;
    });
  }

  async getTask(id: string): Promise<TaskWithMachines | null> {
    const row = await this.#db.one<TaskRow>('SELECT * FROM tasks WHERE id = $1', [id]);
    return row ? (await this.#withMachines(this.#db, [row]))[0]! : null;
  }

  async getTaskMachineByTicket(ticket: string): Promise<TaskMachine | null> {
    const row = await this.#db.one<TaskMachineRow>('SELECT * FROM task_machines WHERE ticket = $1', [ticket]);
    return row ? toTaskMachine(row) : null;
  }

  async listTasks(filter: TaskFilter = {}): Promise<Task[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown): string => `$${params.push(value)}`;
    if (filter.state !== undefined) where.push(`state = ${param(filter.state)}`);
    if (filter.before !== undefined) {
      const num = taskNumOf(filter.before);
      if (num === null) throw invalid(`"${filter.before}" is not a task id (expected T-000123).`);
      where.push(`num < ${param(num)}`);
    }
    const limit = param(clampLimit(filter.limit, 50, 1000));
    const sql = `SELECT * FROM tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY num DESC LIMIT ${limit}`;
    return (await this.#db.rows<TaskRow>(sql, params)).map(toTask);
  }

  async listUnfinishedTasks(): Promise<TaskWithMachines[]> {
    const rows = await this.#db.rows<TaskRow>(`SELECT * FROM tasks WHERE state IN ${UNFINISHED_TASK} ORDER BY num`);
    return this.#withMachines(this.#db, rows);
  }

  async startTask(taskId: string, at?: TimeInput): Promise<boolean> {
    const when = toTimestamp(at);
    return this.#transition(
      transition(
        `UPDATE tasks SET state = 'Running', started_at = $2 WHERE id = $1 AND state = 'Queued'`,
        'SELECT 1 FROM tasks WHERE id = $1',
      ),
      [taskId, when],
      taskId,
    );
  }

  async finishTask(taskId: string, finish: FinishTask): Promise<boolean> {
    const state = checkFinalState(finish.state);
    const when = toTimestamp(finish.at);
    return this.#transition(
      transition(
        `UPDATE tasks SET state = $2, finished_at = $3, error = $4 WHERE id = $1 AND state IN ${UNFINISHED_TASK}`,
        'SELECT 1 FROM tasks WHERE id = $1',
      ),
      [taskId, state, when, finish.error ?? null],
      taskId,
    );
  }

  async requestCancel(taskId: string, at?: TimeInput): Promise<boolean> {
    const when = toTimestamp(at);
    return this.#transition(
      transition(
        `UPDATE tasks SET cancel_requested_at = $2
         WHERE id = $1 AND state IN ${UNFINISHED_TASK} AND cancel_requested_at IS NULL`,
        'SELECT 1 FROM tasks WHERE id = $1',
      ),
      [taskId, when],
      taskId,
    );
  }

  async startTaskMachine(taskId: string, machineId: string, at?: TimeInput): Promise<boolean> {
    const when = toTimestamp(at);
    return this.#transition(
      transition(
        `UPDATE task_machines SET state = 'Running', started_at = $3
         WHERE task_id = $1 AND machine_id = $2 AND state = 'Pending'`,
        'SELECT 1 FROM task_machines WHERE task_id = $1 AND machine_id = $2',
      ),
      [taskId, machineId, when],
      taskId,
      machineId,
    );
  }

  async finishTaskMachine(taskId: string, machineId: string, finish: FinishTaskMachine): Promise<boolean> {
    const state = checkFinalState(finish.state);
    const when = toTimestamp(finish.at);
    if (finish.exitCode != null && !Number.isInteger(finish.exitCode)) {
      throw invalid(`exitCode must be an integer, got ${finish.exitCode}.`);
    }
    return this.#transition(
      transition(
        `UPDATE task_machines SET state = $3, exit_code = $4, error = $5, finished_at = $6
         WHERE task_id = $1 AND machine_id = $2 AND state IN ${UNFINISHED_MACHINE}`,
        'SELECT 1 FROM task_machines WHERE task_id = $1 AND machine_id = $2',
      ),
      [taskId, machineId, state, finish.exitCode ?? null, finish.error ?? null, when],
      taskId,
      machineId,
    );
  }

  // ------------------------------------------------------------ task log

  async appendMachineLog(taskId: string, machineId: string, lines: TentacleLogLine[]): Promise<LogLine[]> {
    const checked = lines.map((l) => {
      if (!Number.isSafeInteger(l.tentacleSeq) || l.tentacleSeq < 1) {
        throw invalid(`tentacleSeq must be a positive integer, got ${l.tentacleSeq}.`);
      }
      if (typeof l.text !== 'string') throw invalid('Log text must be a string.');
      return { tentacleSeq: l.tentacleSeq, at: toTimestamp(l.at), stream: checkStream(l.stream), text: l.text };
    });
    checked.sort((a, b) => a.tentacleSeq - b.tentacleSeq);
    return this.#tx(async (db) => {
      const locked = await db.one<{ log_cursor: number }>(LOCK_MACHINE_CURSOR, [taskId, machineId]);
      if (!locked) throw new ReefError('REEF_NOT_FOUND', `Task ${taskId} has no machine ${machineId}.`);
      const fresh: typeof checked = [];
      let high = locked.log_cursor;
      for (const line of checked) {
        if (line.tentacleSeq <= high) continue;
        fresh.push(line);
        high = line.tentacleSeq;
      }
      if (fresh.length === 0) return [];
      const { base } = (await db.one<{ base: number }>(APPEND_MACHINE_LINES, [
        taskId,
        machineId,
        fresh.length,
        high,
        fresh.map((l) => l.at),
        fresh.map((l) => l.stream),
        fresh.map((l) => l.text),
      ]))!;
      return fresh.map(
        (l, i): LogLine => ({ taskId, seq: base + i + 1, machineId, at: l.at, stream: l.stream, text: pgText(l.text) }),
      );
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
      text: pgText(String(text)),
    };
    const stored = await this.#db.one<{ seq: number }>(APPEND_TASK_LINE, [taskId, machineId, row.at, row.stream, row.text]);
    if (!stored) throw new ReefError('REEF_NOT_FOUND', `No task has id ${taskId}.`);
    return toLogLine({ ...row, seq: stored.seq });
  }

  async readLog(taskId: string, afterSeq = 0, limit?: number): Promise<LogLine[]> {
    const rows = await this.#db.rows<LogRow>(READ_LOG, [taskId, afterSeq, clampLimit(limit, 1000, 10000)]);
    return rows.map(toLogLine);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }
}

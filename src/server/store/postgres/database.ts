/**
 * The store on PostgreSQL: several server nodes on one database.
 *
 * Each call is one statement where it can be, else one short READ COMMITTED transaction.
 * Races between nodes end as they do on SQLite: a unique or foreign-key violation from a
 * concurrent writer retries the whole transaction, which then sees the committed row and
 * answers as if the two calls had run one after the other.
 */
import pg from 'pg';
import { ReefError } from '../../../errors.js';
import { join, raw, sql, type Database, type Db, type Dialect, type Sql } from '../sql.js';
import { storeOn } from '../store.js';
import type { LogRow } from '../rows.js';
import type { Store } from '../types.js';
import { appendLines } from './log.js';
import { migrate } from '../migrate.js';
import { pgText, typeParsers } from './rows.js';

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
 */
export async function createPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<Store> {
  return storeOn(await openPostgres(url, options));
}

/** The migrated database under the store. */
export async function openPostgres(url: string, options: PostgresStoreOptions = {}): Promise<Database> {
  const database = await connectPostgres(url, options);
  await migrate(database).catch(async (err: unknown) => {
    await database.close();
    throw err;
  });
  return database;
}

/** A pool on the database as it is, schema not touched; fails when no connection opens. */
export async function connectPostgres(url: string, options: PostgresStoreOptions = {}): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: Math.max(1, Math.floor(options.poolSize ?? 10)),
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    idleTimeoutMillis: options.idleTimeoutMs ?? 30_000,
    application_name: options.applicationName ?? 'reef',
    types: typeParsers,
  });
  pool.on('error', options.onIdleError ?? (() => undefined));
  try {
    (await pool.connect()).release();
  } catch (err) {
    await pool.end();
    throw unreachable(url, err, 'REEF_STORE_OPEN_FAILED');
  }
  return new PostgresDatabase(pool, url);
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

function unreachable(url: string, err: unknown, code: 'REEF_STORE_OPEN_FAILED' | 'REEF_STORE_UNAVAILABLE'): ReefError {
  return new ReefError(
    code,
    `Cannot connect to PostgreSQL at ${redactUrl(url)}: ${err instanceof Error ? err.message : String(err)}. ` +
      `Check that the server runs, that the URL's host, port, user and database are right, and that ` +
      `pg_hba.conf lets this host in.`,
    { cause: err },
  );
}

const postgresDialect: Dialect = {
  name: 'postgres',
  inList: (expr, values) => sql`${expr} = ANY(${values}::text[])`,
  listsPerStatement: (values) => [values],
  textRows: (columns, rows) => {
    const arrays = columns.map((_, i) => sql`${rows.map((row) => row[i])}::text[]`);
    return sql`SELECT * FROM unnest(${join(arrays, ', ')}) AS r (${raw(columns.join(', '))})`;
  },
  // pg would send a JS array as a PostgreSQL array literal, so JSON goes as text, cast.
  json: (value) => sql`${value === null ? null : JSON.stringify(value)}::json`,
  clock: (offsetMs) => (offsetMs === 0 ? sql`now()` : sql`(now() + ${offsetMs}::double precision * interval '1 millisecond')`),
  timestampType: 'timestamptz',
  // Advisory lock key ("REEF", 1), held to the end of the transaction.
  migrationLock: sql`SELECT pg_advisory_xact_lock(${0x52454546}, ${1})`,
  forUpdate: sql`FOR UPDATE`,
  forUpdateSkipLocked: (alias) => sql`FOR UPDATE OF ${raw(alias)} SKIP LOCKED`,
  async appendLog(db, taskId, machineId, lines, usage) {
    const rows = await db.all<LogRow>(appendLines(taskId, machineId, lines, usage));
    return rows.sort((a, b) => a.seq - b.seq);
  },
  appendLogIsOneStatement: true,
};

/** Text parameters lose U+0000 (see pgText); everything else passes as is. */
function clean(values: readonly unknown[]): unknown[] {
  return values.map((p) =>
    typeof p === 'string' ? pgText(p) : Array.isArray(p) ? p.map((x) => (typeof x === 'string' ? pgText(x) : x)) : p,
  );
}

function dbOn(target: pg.Pool | pg.PoolClient): Db {
  const query = (q: Sql): Promise<pg.QueryResult> => (target as pg.ClientBase).query(q.render((i) => `$${i}`), clean(q.values));
  return {
    dialect: postgresDialect,
    all: async <R>(q: Sql) => (await query(q)).rows as R[],
    one: async <R>(q: Sql) => (await query(q)).rows[0] as R | undefined,
    run: async (q: Sql) => (await query(q)).rowCount ?? 0,
    // Without parameters pg uses the simple protocol, which takes several statements.
    script: async (text: string) => void (await (target as pg.ClientBase).query(text)),
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

/** Codes from the driver that mean "no connection", as opposed to a failed statement (57P01
 * admin_shutdown, 57P03 cannot_connect_now). */
const NO_CONNECTION = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', '57P01', '57P03']);

function isConnectionError(err: unknown): boolean {
  if (NO_CONNECTION.has(sqlState(err) ?? '')) return true;
  return err instanceof Error && /timeout exceeded when trying to connect|Connection terminated/i.test(err.message);
}

class PostgresDatabase implements Database {
  readonly dialect = postgresDialect;
  readonly #pool: pg.Pool;
  readonly #url: string;
  readonly #db: Db;
  #closed = false;

  constructor(pool: pg.Pool, url: string) {
    this.#pool = pool;
    this.#url = url;
    this.#db = dbOn(pool);
  }

  #checkOpen(): void {
    if (this.#closed) throw new ReefError('REEF_STORE_CLOSED', 'The store was closed; open a new one.');
  }

  #translate(err: unknown): unknown {
    if (err instanceof ReefError || !isConnectionError(err)) return err;
    return unreachable(this.#url, err, 'REEF_STORE_UNAVAILABLE');
  }

  /** A statement on the pool, refused after close, naming the database when it is gone. */
  async #guarded<R>(fn: () => Promise<R>): Promise<R> {
    this.#checkOpen();
    try {
      return await fn();
    } catch (err) {
      throw this.#translate(err);
    }
  }

  all<R>(query: Sql): Promise<R[]> {
    return this.#guarded(() => this.#db.all<R>(query));
  }

  one<R>(query: Sql): Promise<R | undefined> {
    return this.#guarded(() => this.#db.one<R>(query));
  }

  run(query: Sql): Promise<number> {
    return this.#guarded(() => this.#db.run(query));
  }

  script(text: string): Promise<void> {
    return this.#guarded(() => this.#db.script(text));
  }

  /** Runs fn in a READ COMMITTED transaction, again from the start after a retryable race. */
  async transaction<T>(fn: (db: Db) => Promise<T>): Promise<T> {
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

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }
}

/**
 * The store on SQLite (better-sqlite3): the embedded default, one server node per file.
 *
 * WAL lets readers run beside the one writer; every write starts an IMMEDIATE transaction,
 * so two processes on one file queue on busy_timeout instead of failing on a lock upgrade.
 *
 * better-sqlite3 runs each statement synchronously, but a transaction's body is async (it is
 * shared with PostgreSQL) and yields between statements. So within this process a file is
 * handed to one transaction at a time (`Turns`), whichever connection runs it: a call that
 * comes meanwhile waits its turn, so it never sees or joins uncommitted writes, and never
 * blocks the thread in busy_timeout on a lock that only this same thread could release.
 */
import { resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { Database as Connection, Statement } from 'better-sqlite3';
import { ReefError } from '../../../errors.js';
import { raw, sql, type Database, type Db, type Dialect, type LineToStore, type Sql } from '../sql.js';
import { storeOn } from '../store.js';
import type { LogRow } from '../rows.js';
import type { Store } from '../types.js';
import { migrate } from '../migrate.js';

export interface SqliteStoreOptions {
  /** How long a write waits for another process's write lock before failing. Default 5000 ms. */
  busyTimeoutMs?: number;
}

/** Opens (creating if needed) a SQLite store and brings its schema up to date. */
export async function createSqliteStore(path: string, options: SqliteStoreOptions = {}): Promise<Store> {
  return storeOn(await openSqlite(path, options));
}

/** The migrated database under the store. */
export async function openSqlite(path: string, options: SqliteStoreOptions = {}): Promise<Database> {
  const database = connectSqlite(path, options);
  await migrate(database).catch(async (err: unknown) => {
    await database.close();
    throw err;
  });
  return database;
}

/** The database file as it is, schema not touched. */
export function connectSqlite(path: string, options: SqliteStoreOptions = {}): Database {
  let db: Connection;
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
  } catch (err) {
    db.close();
    throw err;
  }
  return new SqliteDatabase(db);
}

const sqliteDialect: Dialect = {
  name: 'sqlite',
  // For a list SQLite builds a temporary b-tree, which allocates, writes and frees a page
  // cache of its own (about 85 KiB) every time the statement runs; one value needs none.
  inList: (expr, values) => (values.length === 1 ? sql`${expr} = ${values[0]}` : sql`${expr} IN (SELECT value FROM json_each(${JSON.stringify(values)}))`),
  // An UPDATE or DELETE of several rows by a list builds temporary b-trees too (above); in
  // the one transaction, a statement per value costs SQLite about as much and builds none.
  listsPerStatement: (values) => values.map((value) => [value]),
  textRows: (columns, rows) =>
    sql`SELECT ${raw(columns.map((c, i) => `value ->> ${i} AS ${c}`).join(', '))} FROM json_each(${JSON.stringify(rows)})`,
  json: (value) => sql`${value === null ? null : JSON.stringify(value)}`,
  // One node per file, so the process clock is the only clock; ISO text compares as time.
  clock: (offsetMs) => sql`${new Date(Date.now() + offsetMs).toISOString()}`,
  timestampType: 'TEXT',
  // The IMMEDIATE transaction already holds the file's write lock.
  migrationLock: null,
  forUpdate: sql``,
  forUpdateSkipLocked: () => sql``,
  async appendLog(db, taskId, machineId, lines, usage) {
    const reserved = await db.one<{ log_seq: number }>(
      sql`UPDATE tasks SET log_seq = log_seq + ${lines.length} WHERE id = ${taskId} RETURNING log_seq`,
    );
    if (!reserved) return [];
    const first = reserved.log_seq - lines.length + 1;
    const rows = lines.map((l: LineToStore, i): LogRow => ({ task_id: taskId, seq: first + i, machine_id: machineId, ...l }));
    for (const r of rows) {
      await db.run(sql`INSERT INTO task_log (task_id, seq, machine_id, at, stream, text)
        VALUES (${r.task_id}, ${r.seq}, ${r.machine_id}, ${r.at}, ${r.stream}, ${r.text})`);
    }
    if (usage !== null) {
      await db.run(sql`UPDATE task_machines SET log_cursor = ${usage.cursor}, log_bytes = ${usage.bytes},
        dropped_log_lines = ${usage.droppedLines}, dropped_log_bytes = ${usage.droppedBytes}
        WHERE task_id = ${taskId} AND machine_id = ${machineId}`);
    }
    return rows;
  },
  appendLogIsOneStatement: false,
};

/** better-sqlite3 binds no booleans: they are stored as 0/1, as the schema's INTEGER columns expect. */
const bindable = (values: readonly unknown[]) => values.map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v));

/** Transactions on one file from this process, one at a time, in the order they came. */
class Turns {
  /** Settles when the last turn taken so far has ended. */
  #last: Promise<void> = Promise.resolve();
  /** Turns queued or running: while any, every call waits its turn. */
  waiting = 0;
  /** Open connections to the file that share these turns. */
  users = 0;

  async take<T>(fn: () => Promise<T>): Promise<T> {
    this.waiting++;
    const before = this.#last;
    let done!: () => void;
    this.#last = new Promise((resolve) => (done = resolve));
    try {
      await before;
      return await fn();
    } finally {
      this.waiting--;
      done();
    }
  }
}

const turnsByFile = new Map<string, Turns>();

function turnsFor(db: Connection): Turns {
  if (db.memory) return new Turns();
  const file = resolve(db.name);
  const turns = turnsByFile.get(file) ?? new Turns();
  turnsByFile.set(file, turns);
  return turns;
}

class SqliteDatabase implements Database {
  readonly dialect = sqliteDialect;
  readonly #db: Connection;
  readonly #statements = new Map<string, Statement>();
  readonly #turns: Turns;
  #closed = false;

  constructor(db: Connection) {
    this.#db = db;
    this.#turns = turnsFor(db);
    this.#turns.users++;
  }

  /** Prepared once per distinct SQL text. */
  #statement(query: Sql): Statement {
    if (this.#closed) throw new ReefError('REEF_STORE_CLOSED', 'The store was closed; open a new one.');
    const text = query.render(() => '?');
    let statement = this.#statements.get(text);
    if (!statement) {
      statement = this.#db.prepare(text);
      this.#statements.set(text, statement);
    }
    return statement;
  }

  /** Statements of the transaction that holds the connection. */
  readonly #inTransaction: Db = {
    dialect: sqliteDialect,
    all: async <R>(query: Sql) => this.#all<R>(query),
    one: async <R>(query: Sql) => this.#all<R>(query)[0],
    run: async (query: Sql) => this.#run(query),
    script: async (text: string) => void this.#db.exec(text),
  };

  #all<R>(query: Sql): R[] {
    const statement = this.#statement(query);
    const params = bindable(query.values);
    if (statement.reader) return statement.all(...params) as R[];
    statement.run(...params);
    return [];
  }

  #run(query: Sql): number {
    return this.#statement(query).run(...bindable(query.values)).changes;
  }

  /** One statement outside a transaction: a write takes the write lock up front, as a transaction of its own. */
  async #alone<T>(query: Sql, exec: (query: Sql) => T): Promise<T> {
    const now = () =>
      this.#statement(query).readonly ? exec(query) : this.#busy(() => this.#db.transaction(() => exec(query)).immediate());
    // Synchronous when the connection is free, so nothing can interleave with it.
    return this.#turns.waiting > 0 ? this.#turns.take(async () => now()) : now();
  }

  all<R>(query: Sql): Promise<R[]> {
    return this.#alone(query, (q) => this.#all<R>(q));
  }

  async one<R>(query: Sql): Promise<R | undefined> {
    return (await this.all<R>(query))[0];
  }

  run(query: Sql): Promise<number> {
    return this.#alone(query, (q) => this.#run(q));
  }

  script(text: string): Promise<void> {
    return this.transaction((db) => db.script(text));
  }

  transaction<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    return this.#turns.take(async () => {
      this.#busy(() => this.#statement(sql`BEGIN IMMEDIATE`).run());
      try {
        const result = await fn(this.#inTransaction);
        this.#statement(sql`COMMIT`).run();
        return result;
      } catch (err) {
        if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  /** Names the cause when another process held the write lock past busy_timeout. */
  #busy<T>(fn: () => T): T {
    try {
      return fn();
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

  async close(): Promise<void> {
    if (this.#closed) return;
    // A transaction under way finishes first; calls after this one are refused.
    await this.#turns.take(async () => {
      this.#closed = true;
    });
    if (--this.#turns.users === 0) turnsByFile.delete(resolve(this.#db.name));
    this.#statements.clear();
    this.#db.close();
  }
}

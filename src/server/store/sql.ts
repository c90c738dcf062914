/**
 * What the aggregate modules (groups, machines, auth, tasks, logs, cluster) write their SQL
 * against, so each query is written once for both databases. A query is an `sql` template:
 * interpolated values become parameters, interpolated `Sql` fragments are spliced in, and
 * each driver renders the placeholders its own way (`?` on SQLite, `$n` on PostgreSQL).
 *
 * Where the two dialects disagree, the difference has a name on `Dialect` and one
 * implementation per database, in `sqlite/` and `postgres/`.
 */
import type { LogRow } from './rows.js';
import type { JsonObject, LogStream, Timestamp } from './types.js';

export class Sql {
  constructor(
    /** Text around the parameters: always one more than `values`. */
    readonly parts: readonly string[],
    readonly values: readonly unknown[],
  ) {}

  /** The text with each parameter written by `placeholder` (1-based index). */
  render(placeholder: (index: number) => string): string {
    let text = this.parts[0]!;
    for (let i = 1; i < this.parts.length; i++) text += placeholder(i) + this.parts[i];
    return text;
  }
}

/** A query: `${value}` is a parameter, `${fragment}` (an Sql) is spliced in with its parameters. */
export function sql(strings: TemplateStringsArray, ...values: unknown[]): Sql {
  const parts = [strings[0]!];
  const params: unknown[] = [];
  const append = (text: string) => (parts[parts.length - 1] += text);
  values.forEach((value, i) => {
    if (value instanceof Sql) {
      append(value.parts[0]!);
      value.values.forEach((v, j) => {
        params.push(v);
        parts.push(value.parts[j + 1]!);
      });
      append(strings[i + 1]!);
    } else {
      params.push(value);
      parts.push(strings[i + 1]!);
    }
  });
  return new Sql(parts, params);
}

/** Trusted text (a table or column name from this code, never input). */
export const raw = (text: string): Sql => new Sql([text], []);

/** The fragments joined by `separator`. */
export function join(fragments: readonly Sql[], separator: string): Sql {
  return fragments.reduce((all, next, i) => (i === 0 ? next : sql`${all}${raw(separator)}${next}`), raw(''));
}

/** `WHERE a AND b`, or nothing when there are no conditions. */
export const where = (conditions: readonly Sql[]): Sql =>
  conditions.length === 0 ? raw('') : sql`WHERE ${join(conditions, ' AND ')}`;

/** Runs queries: the database itself, or the connection of one transaction. */
export interface Db {
  readonly dialect: Dialect;
  all<R>(query: Sql): Promise<R[]>;
  one<R>(query: Sql): Promise<R | undefined>;
  /** Returns how many rows the statement changed. */
  run(query: Sql): Promise<number>;
  /** Runs several statements without parameters (a migration file). */
  script(text: string): Promise<void>;
}

/** The database a store opened. Outside a transaction each statement commits on its own. */
export interface Database extends Db {
  /**
   * Runs `fn` so that its statements commit together or not at all, and no other call sees
   * them before they commit or joins them. `fn` must use only the `Db` it is given (on SQLite
   * the outer database waits for this transaction to end) and may run more than once
   * (PostgreSQL retries a transaction that lost a race to another node).
   */
  transaction<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** A line for the task log, checked and ready to store. */
export interface LineToStore {
  at: Timestamp;
  stream: LogStream;
  text: string;
}

/** What a task machine's row records of its Tentacle output (see appendMachineLog in logs.ts). */
export interface MachineLogUsage {
  cursor: number;
  bytes: number;
  droppedLines: number;
  droppedBytes: number;
}

/** The places where SQLite and PostgreSQL need different SQL. */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /** `expr IN (values)` for a list of text bound as one parameter (arrays). */
  inList(expr: Sql, values: readonly string[]): Sql;
  /**
   * How a write by `inList` splits `values` over statements run in one transaction, for the
   * writes that every new Tentacle connection causes: PostgreSQL takes the whole list in one
   * statement (one round trip); SQLite one value per statement (see its inList: a list
   * builds temporary b-trees, and the memory they write and free per connection ends up
   * under the connections' TLS buffers, docs/performance.md "fleet").
   */
  listsPerStatement(values: readonly string[]): (readonly string[])[];
  /** Rows of text with these column names, bound as one parameter per column at most (arrays), to select from. */
  textRows(columns: readonly string[], rows: readonly (readonly string[])[]): Sql;
  /** A JSON object parameter (SQLite keeps text, PostgreSQL a json column). */
  json(value: JsonObject | null): Sql;
  /** The time `offsetMs` from now, by the clock that leases and heartbeats are measured with. */
  clock(offsetMs: number): Sql;
  /** The column type of timestamps (SQLite keeps ISO 8601 text, which sorts as time). */
  readonly timestampType: string;
  /** Serialises migrations between processes, or null where the transaction alone does. */
  readonly migrationLock: Sql | null;
  /** Ends a SELECT whose rows the transaction is about to change and another node must not. */
  readonly forUpdate: Sql;
  /** Like forUpdate for `alias`, but rows another node holds are passed over, not waited for. */
  forUpdateSkipLocked(alias: string): Sql;
  /**
   * Stores lines after the task's last seq, in the order given, and sets the machine's log
   * cursor and quota counters when `usage` is not null; returns the stored rows in seq order,
   * none when the task does not exist. The caller runs it inside a transaction, unless
   * `appendLogIsOneStatement`.
   */
  appendLog(db: Db, taskId: string, machineId: string | null, lines: readonly LineToStore[], usage: MachineLogUsage | null): Promise<LogRow[]>;
  /** appendLog is a single statement, atomic without a transaction of its own. */
  readonly appendLogIsOneStatement: boolean;
}

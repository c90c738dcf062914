import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ReefError } from '../../errors.js';
import { raw, sql, type Database, type Dialect } from './sql.js';

/**
 * Numbered migrations: `migrations/<dialect>/NNN_name.sql`, applied in number order, each
 * in its own transaction together with its row in `schema_migrations`. Both dialects use
 * the same numbers, so a version means the same schema everywhere.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const FILE = /^(\d{3,})_([A-Za-z0-9_]+)\.sql$/;

export function migrationsDir(dialect: Dialect['name']): string {
  return fileURLToPath(new URL(`./migrations/${dialect}/`, import.meta.url));
}

export function loadMigrations(dir: string): Migration[] {
  const migrations: Migration[] = [];
  for (const file of readdirSync(dir)) {
    const match = FILE.exec(file);
    if (!match) continue;
    migrations.push({
      version: Number(match[1]),
      name: match[2]!,
      sql: readFileSync(`${dir}/${file}`, 'utf8'),
    });
  }
  migrations.sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version === migrations[i - 1]!.version) {
      throw new ReefError(
        'REEF_MIGRATION_INVALID',
        `Two migrations in ${dir} share number ${migrations[i]!.version}; give each file its own number.`,
      );
    }
  }
  return migrations;
}

/**
 * Which of `available` still need applying. Refuses a database that has a version this
 * build does not know: it was migrated by a newer Reef, and running old code on it could
 * corrupt data.
 */
export function pendingMigrations(available: Migration[], applied: number[]): Migration[] {
  const known = new Set(available.map((m) => m.version));
  const unknown = applied.filter((v) => !known.has(v));
  if (unknown.length > 0) {
    throw new ReefError(
      'REEF_STORE_TOO_NEW',
      `The database has schema version(s) ${unknown.join(', ')} that this Reef does not know ` +
        `(it knows up to ${Math.max(0, ...known)}). It was upgraded by a newer Reef; run that version.`,
    );
  }
  const done = new Set(applied);
  return available.filter((m) => !done.has(m.version));
}

export function migrationFailed(m: Migration, err: unknown): ReefError {
  return new ReefError(
    'REEF_MIGRATION_FAILED',
    `Migration ${String(m.version).padStart(3, '0')}_${m.name} failed and was rolled back: ` +
      `${err instanceof Error ? err.message : String(err)}`,
    { cause: err },
  );
}

/**
 * Applies what is missing, one transaction per migration; returns the versions applied now.
 * Safe on every open and from several processes at once (server nodes starting together):
 * each transaction takes the migration lock, then re-reads what is applied, so exactly one
 * process applies a migration and the others find it done.
 */
export async function migrate(database: Database, dir = migrationsDir(database.dialect.name)): Promise<number[]> {
  // SQLite changes a table's CHECK by rebuilding it (sqlite.org/lang_altertable.html), with
  // foreign keys off, or dropping the old table would cascade into the tables referring to
  // it; each migration's transaction ends with a foreign key check instead. The pragma is
  // a no-op inside a transaction, so it is set around them.
  const sqlite = database.dialect.name === 'sqlite';
  if (sqlite) await database.run(sql`PRAGMA foreign_keys = OFF`);
  try {
    return await applyPending(database, loadMigrations(dir));
  } finally {
    if (sqlite) await database.run(sql`PRAGMA foreign_keys = ON`);
  }
}

async function applyPending(database: Database, available: Migration[]): Promise<number[]> {
  const appliedNow: number[] = [];
  for (;;) {
    const applied = await database.transaction(async (db) => {
      const d = db.dialect;
      if (d.migrationLock) await db.run(d.migrationLock);
      await db.run(sql`CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at ${raw(d.timestampType)} NOT NULL)`);
      const rows = await db.all<{ version: number }>(sql`SELECT version FROM schema_migrations`);
      const next = pendingMigrations(available, rows.map((r) => r.version))[0];
      if (!next) return undefined;
      await db.script(next.sql).catch((err: unknown) => {
        throw migrationFailed(next, err);
      });
      if (d.name === 'sqlite') {
        const broken = await db.all<{ table: string; parent: string }>(sql`PRAGMA foreign_key_check`);
        if (broken.length) throw migrationFailed(next, new Error(`it left rows of ${broken[0]!.table} without their ${broken[0]!.parent} row`));
      }
      await db.run(sql`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${next.version}, ${next.name}, ${d.clock(0)})`);
      return next.version;
    });
    if (applied === undefined) return appliedNow;
    appliedNow.push(applied);
  }
}

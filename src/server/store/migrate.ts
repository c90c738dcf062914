import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Database } from 'better-sqlite3';
import { ReefError } from '../../errors.js';

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

export type Dialect = 'sqlite' | 'postgres';

const FILE = /^(\d{3,})_([A-Za-z0-9_]+)\.sql$/;

export function migrationsDir(dialect: Dialect): string {
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

/** Applies what is missing; returns the versions applied now. Safe to call on every open. */
export function migrateSqlite(db: Database, dir = migrationsDir('sqlite')): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  TEXT NOT NULL
  )`);
  const appliedNow: number[] = [];
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  const readApplied = db.prepare('SELECT version FROM schema_migrations').pluck();
  // Re-read inside each IMMEDIATE transaction: another process may be migrating the same file.
  const applyOne = db.transaction((m: Migration): boolean => {
    if ((readApplied.all() as number[]).includes(m.version)) return false;
    db.exec(m.sql);
    record.run(m.version, m.name, new Date().toISOString());
    return true;
  });
  for (const m of pendingMigrations(loadMigrations(dir), readApplied.all() as number[])) {
    try {
      if (applyOne.immediate(m)) appliedNow.push(m.version);
    } catch (err) {
      throw new ReefError(
        'REEF_MIGRATION_FAILED',
        `Migration ${String(m.version).padStart(3, '0')}_${m.name} failed and was rolled back: ` +
          `${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  }
  return appliedNow;
}

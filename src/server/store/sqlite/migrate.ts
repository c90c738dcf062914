import type { Database } from 'better-sqlite3';
import { loadMigrations, migrationFailed, migrationsDir, pendingMigrations, type Migration } from '../migrate.js';

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
      throw migrationFailed(m, err);
    }
  }
  return appliedNow;
}

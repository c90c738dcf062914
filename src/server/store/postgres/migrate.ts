import type { ClientBase } from 'pg';
import { loadMigrations, migrationFailed, migrationsDir, pendingMigrations, type Migration } from '../migrate.js';

/**
 * Advisory lock key ("REEF", 1). Several server nodes may start at once on one database:
 * each migration runs in a transaction that first takes this lock, then re-reads what is
 * applied, so exactly one node applies it and the others find it done.
 */
const LOCK = [0x52454546, 1] as const;

/**
 * Applies what is missing, one transaction per migration; returns the versions applied now.
 * Safe to call on every open and from several processes at once.
 */
export async function migratePostgres(client: ClientBase, dir = migrationsDir('postgres')): Promise<number[]> {
  const available = loadMigrations(dir);
  const appliedNow: number[] = [];
  for (;;) {
    let next: Migration | undefined;
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...LOCK]);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version     integer PRIMARY KEY,
        name        text NOT NULL,
        applied_at  timestamptz NOT NULL
      )`);
      const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
      next = pendingMigrations(
        available,
        rows.map((r) => r.version),
      )[0];
      if (next) {
        try {
          await client.query(next.sql);
        } catch (err) {
          throw migrationFailed(next, err);
        }
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())', [
          next.version,
          next.name,
        ]);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    if (!next) return appliedNow;
    appliedNow.push(next.version);
  }
}

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { loadMigrations, migrate, migrationsDir } from '../../../src/server/store/migrate.js';
import { connectSqlite } from '../../../src/server/store/sqlite/database.js';
import { createSqliteStore } from '../../../src/server/store/index.js';
import { target } from './helpers.js';

describe('sqlite migrations', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'reef-migrate-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('applies every numbered migration once, records it, and is idempotent on re-open', async () => {
    const path = join(dir, 'idempotent.db');
    const known = loadMigrations(migrationsDir('sqlite')).map((m) => m.version);
    assert.deepEqual(known.slice(0, 1), [1]);

    const first = await createSqliteStore(path);
    await first.createMachine(target('web-01'));
    await first.close();

    const second = await createSqliteStore(path);
    assert.equal((await second.listMachines()).length, 1, 'data survives re-open');
    await second.close();

    const raw = new Database(path, { readonly: true });
    const rows = raw.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all() as {
      version: number;
      name: string;
    }[];
    assert.deepEqual(
      rows.map((r) => r.version),
      known,
    );
    assert.equal(rows[0]!.name, 'initial');
    assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    raw.close();
  });

  it('turns on foreign keys and waits busy_timeout for another writer', async () => {
    const path = join(dir, 'pragmas.db');
    const store = await createSqliteStore(path, { busyTimeoutMs: 300 });
    // The store hides its connection; a constraint only foreign keys enforce shows them on.
    await store.createMachine(target('fk-01', { environments: ['Staging'] }));
    await assert.rejects(store.deleteEnvironment('Staging'), { code: 'REEF_IN_USE' });

    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    const started = Date.now();
    await assert.rejects(store.ensureEnvironment('Blocked'), { code: 'REEF_STORE_BUSY' });
    assert.ok(Date.now() - started >= 250, 'the write waited for the lock before giving up');
    other.exec('ROLLBACK');
    other.close();
    await store.ensureEnvironment('Unblocked');
    await store.close();
  });

  it('lets two stores open the same new file at once', async () => {
    const path = join(dir, 'race.db');
    const stores = await Promise.all([createSqliteStore(path), createSqliteStore(path)]);
    await stores[0]!.ensureEnvironment('A');
    assert.equal((await stores[1]!.listEnvironments()).length, 1);
    await Promise.all(stores.map((s) => s.close()));
  });

  it('refuses a database migrated by a newer Reef', async () => {
    const path = join(dir, 'newer.db');
    await (await createSqliteStore(path)).close();
    const raw = new Database(path);
    raw.prepare(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', '2030-01-01T00:00:00.000Z')`).run();
    raw.close();
    await assert.rejects(createSqliteStore(path), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'REEF_STORE_TOO_NEW');
      assert.match(err.message, /999/);
      return true;
    });
  });

  it('rolls back a failing migration and keeps the ones before it', async () => {
    const migrations = join(dir, 'bad-migrations');
    await mkdir(migrations);
    await writeFile(join(migrations, '001_one.sql'), 'CREATE TABLE one (x INTEGER);');
    await writeFile(join(migrations, '002_two.sql'), 'CREATE TABLE two (x INTEGER); INSERT INTO nowhere VALUES (1);');
    await writeFile(join(migrations, 'README.md'), 'not a migration');
    const database = connectSqlite(join(dir, 'bad.db'));
    await assert.rejects(migrate(database, migrations), { code: 'REEF_MIGRATION_FAILED', message: /002_two/ });
    await database.close();
    const db = new Database(join(dir, 'bad.db'));
    const versions = db.prepare('SELECT version FROM schema_migrations').pluck().all();
    assert.deepEqual(versions, [1]);
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('one', 'two')`).pluck().all();
    assert.deepEqual(tables, ['one'], 'the failed migration left nothing behind');

    await writeFile(join(migrations, '002_two.sql'), 'CREATE TABLE two (x INTEGER);');
    db.close();
    const again = connectSqlite(join(dir, 'bad.db'));
    assert.deepEqual(await migrate(again, migrations), [2], 'fixed migration applies on the next open');
    assert.deepEqual(await migrate(again, migrations), []);
    await again.close();
  });

  it('refuses two migration files with one number', async () => {
    const migrations = join(dir, 'dup-migrations');
    await mkdir(migrations);
    await writeFile(join(migrations, '001_a.sql'), 'SELECT 1;');
    await writeFile(join(migrations, '001_b.sql'), 'SELECT 1;');
    assert.throws(() => loadMigrations(migrations), { code: 'REEF_MIGRATION_INVALID' });
  });

  it('says where a store could not be opened', async () => {
    await assert.rejects(createSqliteStore(join(dir, 'missing-dir', 'x.db')), {
      code: 'REEF_STORE_OPEN_FAILED',
      message: /missing-dir/,
    });
  });
});

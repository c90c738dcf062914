// What only the PostgreSQL store has: migrations under an advisory lock, connection
// errors, U+0000 in text (PostgreSQL's text cannot hold it), and a schema that matches SQLite's column for column.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { loadMigrations, migrate, migrationsDir } from '../../../src/server/store/migrate.js';
import { connectSqlite } from '../../../src/server/store/sqlite/database.js';
import { connectPostgres, createPostgresStore } from '../../../src/server/store/postgres/database.js';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.js';
import { target } from './helpers.js';

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

describe('postgres store: migrations', () => {
  const databases: TestDatabase[] = [];
  let dir: string;
  const emptyDatabase = async (): Promise<TestDatabase> => {
    const db = await createTestDatabase({ empty: true });
    databases.push(db);
    return db;
  };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'reef-pg-migrate-'));
  });
  after(async () => {
    await Promise.all(databases.map((db) => db.drop()));
    await rm(dir, { recursive: true, force: true });
  });

  it('migrates once when several nodes open a new database at once', async () => {
    const db = await emptyDatabase();
    const known = loadMigrations(migrationsDir('postgres')).map((m) => m.version);
    assert.deepEqual(known, loadMigrations(migrationsDir('sqlite')).map((m) => m.version), 'same numbers as SQLite');
    const stores = await Promise.all(Array.from({ length: 5 }, () => createPostgresStore(db.url, { poolSize: 2 })));
    await stores[0]!.createMachine(target('web-01'));
    assert.equal((await stores[4]!.listMachines()).length, 1);
    await Promise.all(stores.map((s) => s.close()));

    const reopened = await createPostgresStore(db.url);
    assert.equal((await reopened.listMachines()).length, 1, 'data survives re-open');
    await reopened.close();
    const rows = await withClient(db.url, async (c) => (await c.query('SELECT version, name FROM schema_migrations ORDER BY version')).rows);
    assert.deepEqual(
      rows.map((r) => r.version),
      known,
    );
    assert.equal(rows[0].name, 'initial');
  });

  it('refuses a database migrated by a newer Reef', async () => {
    const db = await emptyDatabase();
    await (await createPostgresStore(db.url)).close();
    await withClient(db.url, (c) => c.query(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', now())`));
    await assert.rejects(createPostgresStore(db.url), { code: 'REEF_STORE_TOO_NEW', message: /999/ });
  });

  it('rolls back a failing migration and keeps the ones before it', async () => {
    const db = await emptyDatabase();
    const migrations = join(dir, 'bad');
    await mkdir(migrations);
    await writeFile(join(migrations, '001_one.sql'), 'CREATE TABLE one (x integer);');
    await writeFile(join(migrations, '002_two.sql'), 'CREATE TABLE two (x integer); INSERT INTO nowhere VALUES (1);');
    const database = await connectPostgres(db.url);
    await assert.rejects(migrate(database, migrations), { code: 'REEF_MIGRATION_FAILED', message: /002_two.*nowhere/ });
    await withClient(db.url, async (c) => {
      assert.deepEqual((await c.query('SELECT version FROM schema_migrations')).rows.map((r) => r.version), [1]);
      const tables = await c.query(`SELECT tablename FROM pg_tables WHERE tablename IN ('one', 'two') ORDER BY 1`);
      assert.deepEqual(tables.rows.map((r) => r.tablename), ['one'], 'the failed migration left nothing behind');
    });
    await writeFile(join(migrations, '002_two.sql'), 'CREATE TABLE two (x integer);');
    assert.deepEqual(await migrate(database, migrations), [2], 'fixed migration applies on the next open');
    assert.deepEqual(await migrate(database, migrations), []);
    await database.close();
  });

  it('creates the same tables and columns as the SQLite migrations', async () => {
    const db = await emptyDatabase();
    await (await createPostgresStore(db.url)).close();
    const pgColumns = await withClient(db.url, async (c) =>
      (
        await c.query(`SELECT table_name || '.' || column_name AS col FROM information_schema.columns
                       WHERE table_schema = 'public'`)
      ).rows
        .map((r) => r.col as string)
        .sort(),
    );
    const dir = await mkdtemp(join(tmpdir(), 'reef-columns-'));
    const migrated = connectSqlite(join(dir, 'reef.db'));
    await migrate(migrated);
    await migrated.close();
    const lite = new Database(join(dir, 'reef.db'));
    // sqlite_sequence is SQLite's own (AUTOINCREMENT's counters), not Reef's schema.
    const tables = lite.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!'`).pluck().all() as string[];
    const liteColumns = tables
      .flatMap((table) => (lite.pragma(`table_info(${table})`) as { name: string }[]).map((c) => `${table}.${c.name}`))
      .sort();
    lite.close();
    await rm(dir, { recursive: true, force: true });
    assert.deepEqual(pgColumns, liteColumns);
  });
});

describe('postgres store: connections and text', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
  });
  after(() => db.drop());

  it('says which server it could not reach, without the password', async () => {
    await assert.rejects(createPostgresStore('postgres://reef:s3cret@127.0.0.1:1/reef', { connectTimeoutMs: 2000 }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'REEF_STORE_OPEN_FAILED');
      assert.match(err.message, /127\.0\.0\.1:1\/reef/);
      assert.doesNotMatch(err.message, /s3cret/);
      return true;
    });
    await assert.rejects(createPostgresStore(db.url.replace(db.name, `${db.name}_missing`)), /does not exist/);
  });

  it('stores U+0000 in text as U+FFFD instead of failing, and keeps JSON exactly', async () => {
    const store = await createPostgresStore(db.url);
    try {
      const platform = { 'k\u0000': 'a\u0000b', esc: '\\u0000' };
      const m = await store.createMachine(target('nul-01', { platform }));
      assert.deepEqual(m.platform, platform, 'json keeps what jsonb would refuse');
      const task = await store.createTask({ kind: 'run-script', spec: { body: 'printf "\\0"\u0000' }, target: {}, machineIds: [m.id] });
      assert.equal(task.spec.body, 'printf "\\0"\u0000');
      const [stored] = await store.appendMachineLog(task.id, m.id, [{ tentacleSeq: 1, at: new Date(), stream: 'stdout', text: 'a\u0000b' }]);
      assert.equal(stored!.text, 'a\uFFFDb');
      assert.deepEqual((await store.readLog(task.id)).map((l) => l.text), ['a\uFFFDb']);
      assert.equal((await store.appendTaskLog(task.id, null, 'info', '\u0000')).text, '\uFFFD');
    } finally {
      await store.close();
    }
  });

  it('keeps at most poolSize connections however many calls wait', async () => {
    const store = await createPostgresStore(db.url, { poolSize: 3, applicationName: 'reef-pool-test' });
    try {
      await Promise.all(Array.from({ length: 40 }, (_, i) => store.ensureEnvironment(`pool-${i % 5}`)));
      const open = await withClient(db.url, async (c) =>
        Number((await c.query(`SELECT count(*) FROM pg_stat_activity WHERE application_name = 'reef-pool-test'`)).rows[0].count),
      );
      assert.ok(open >= 1 && open <= 3, `${open} connections`);
      assert.equal((await store.listEnvironments()).filter((e) => e.name.startsWith('pool-')).length, 5);
    } finally {
      await store.close();
    }
  });
});

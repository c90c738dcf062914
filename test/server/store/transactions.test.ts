// The Database under both stores: a transaction is atomic and isolated also when its body
// awaits, on SQLite too, where one synchronous connection (or several, in one process) is
// shared by calls that interleave on the event loop.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openPostgres } from '../../../src/server/store/postgres/database.js';
import { sql, type Database } from '../../../src/server/store/sql.js';
import { openSqlite } from '../../../src/server/store/sqlite/database.js';
import { createTestDatabase } from '../../support/postgres.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

interface Opened {
  database: Database;
  /** Another Database on the same file or database, as a second store in this process opens it. */
  reopen(): Promise<Database>;
  cleanup(): Promise<void>;
}

async function sqliteDatabase(): Promise<Opened> {
  const dir = await mkdtemp(join(tmpdir(), 'reef-tx-'));
  const path = join(dir, 'reef.db');
  // A short busy_timeout: a connection waiting on a lock held by this same thread fails fast.
  const database = await openSqlite(path, { busyTimeoutMs: 200 });
  return {
    database,
    reopen: () => openSqlite(path, { busyTimeoutMs: 200 }),
    async cleanup() {
      await database.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function postgresDatabase(): Promise<Opened> {
  const db = await createTestDatabase();
  const database = await openPostgres(db.url);
  return {
    database,
    reopen: () => openPostgres(db.url),
    async cleanup() {
      await database.close();
      await db.drop();
    },
  };
}

const settingCount = async (db: Database, key: string) =>
  (await db.all(sql`SELECT 1 FROM cluster_settings WHERE key = ${key}`)).length;
const addSetting = (db: Pick<Database, 'run'>, key: string) =>
  db.run(sql`INSERT INTO cluster_settings (key, value, created_at) VALUES (${key}, 'v', ${new Date().toISOString()})`);

for (const [kind, open] of [
  ['sqlite', sqliteDatabase],
  ['postgres', postgresDatabase],
] as const) {
  describe(`${kind} database: transactions`, () => {
    let t: Opened;
    before(async () => {
      t = await open();
    });
    after(() => t.cleanup());

    it('keeps uncommitted writes from other calls, and does not roll their writes back with its own', async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const failing = t.database.transaction(async (db) => {
        await addSetting(db, 'inside');
        await gate;
        throw new Error('the body failed');
      });
      await tick();
      // Made while the transaction is open: neither sees nor joins it.
      const seen = settingCount(t.database, 'inside');
      const written = addSetting(t.database, 'outside');
      await tick();
      release();
      await assert.rejects(failing, /the body failed/);
      assert.equal(await seen, 0);
      assert.equal(await written, 1);
      assert.equal(await settingCount(t.database, 'inside'), 0, 'rolled back');
      assert.equal(await settingCount(t.database, 'outside'), 1, 'committed on its own');
    });

    it('loses no update when many transactions that await between read and write run at once', async () => {
      await t.database.run(sql`INSERT INTO counters (name, value) VALUES ('tx-test', 0)`);
      const increment = (database: Database) =>
        database.transaction(async (db) => {
          const row = await db.one<{ value: number }>(
            sql`SELECT value FROM counters WHERE name = 'tx-test' ${db.dialect.forUpdate}`,
          );
          await tick();
          await db.run(sql`UPDATE counters SET value = ${row!.value + 1} WHERE name = 'tx-test'`);
        });
      const other = await t.reopen();
      try {
        // Half on a second connection to the same database, as a second store in this process.
        await Promise.all(Array.from({ length: 20 }, (_, i) => increment(i % 2 ? other : t.database)));
      } finally {
        await other.close();
      }
      const row = await t.database.one<{ value: number }>(sql`SELECT value FROM counters WHERE name = 'tx-test'`);
      assert.equal(row!.value, 20);
    });

    it('lets a transaction under way finish when the database is closed, and refuses calls after', async () => {
      const other = await t.reopen();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const running = other.transaction(async (db) => {
        await gate;
        await addSetting(db, 'before-close');
      });
      await tick();
      const closing = other.close();
      release();
      await running;
      await closing;
      await assert.rejects(settingCount(other, 'before-close'), { code: 'REEF_STORE_CLOSED' });
      assert.equal(await settingCount(t.database, 'before-close'), 1);
    });
  });
}

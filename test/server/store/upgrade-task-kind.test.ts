/**
 * Migration 011: tasks of kind upgrade-tentacle. SQLite rebuilds the tasks table to widen
 * its CHECK (with foreign keys off while migrating), so a database with tasks, machine runs
 * and log lines from before must come through whole, still cascading on delete.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { migrate, migrationsDir } from '../../../src/server/store/migrate.js';
import { connectSqlite } from '../../../src/server/store/sqlite/database.js';
import { createSqliteStore } from '../../../src/server/store/index.js';
import { forEachStore, target } from './helpers.js';

forEachStore((kind, open) => {
  describe(`${kind}: upgrade-tentacle tasks`, () => {
    it('are stored and read back', async () => {
      const { store, cleanup } = await open();
      try {
        const machine = await store.createMachine(target('up-01'));
        const task = await store.createTask({ kind: 'upgrade-tentacle', spec: { rollbackAfterSeconds: 120, maxParallel: 10 }, target: { machines: ['up-01'] }, machineIds: [machine.id] });
        assert.equal((await store.getTask(task.id))?.kind, 'upgrade-tentacle');
      } finally {
        await cleanup();
      }
    });
  });
});

describe('sqlite: migration 011 on a database with tasks', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'reef-migrate-011-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps every task, machine run and log line, and the cascade from tasks', async () => {
    // The schema as it was before 011.
    const before10 = join(dir, 'migrations');
    await mkdir(before10);
    for (const file of await readdir(migrationsDir('sqlite'))) if (Number(file.slice(0, 3)) < 11) await copyFile(join(migrationsDir('sqlite'), file), join(before10, file));
    const legacy = join(dir, 'legacy.db');
    const legacyDb = connectSqlite(legacy);
    await migrate(legacyDb, before10);
    await legacyDb.close();
    const raw = new Database(legacy);
    raw.pragma('foreign_keys = ON');
    raw.exec(`INSERT INTO tasks (id, num, kind, spec, target, state, created_at) VALUES ('T-1', 1, 'run-script', '{}', '{}', 'Success', '2026-01-01T00:00:00.000Z')`);
    raw.exec(`INSERT INTO task_machines (task_id, machine_id, machine_name, state, ticket) VALUES ('T-1', 'm-1', 'web-01', 'Success', 't-1')`);
    raw.exec(`INSERT INTO task_log (task_id, seq, machine_id, at, stream, text) VALUES ('T-1', 1, 'm-1', '2026-01-01T00:00:00.000Z', 'stdout', 'hello')`);
    assert.throws(() => raw.exec(`INSERT INTO tasks (id, num, kind, spec, target, state, created_at) VALUES ('T-2', 2, 'upgrade-tentacle', '{}', '{}', 'Queued', '2026-01-01T00:00:00.000Z')`), /CHECK/);
    raw.close();

    const store = await createSqliteStore(legacy);
    const task = await store.getTask('T-1');
    assert.equal(task?.machines[0]?.machineName, 'web-01');
    await store.close();
    const after11 = new Database(legacy);
    after11.pragma('foreign_keys = ON');
    assert.equal((after11.prepare(`SELECT count(*) AS n FROM task_log WHERE task_id = 'T-1'`).get() as { n: number }).n, 1);
    after11.exec(`INSERT INTO tasks (id, num, kind, spec, target, state, created_at) VALUES ('T-2', 2, 'upgrade-tentacle', '{}', '{}', 'Queued', '2026-01-01T00:00:00.000Z')`);
    assert.match((after11.prepare(`SELECT sql FROM sqlite_schema WHERE name = 'task_log'`).get() as { sql: string }).sql, /REFERENCES tasks/);
    after11.exec(`DELETE FROM tasks WHERE id = 'T-1'`);
    assert.equal((after11.prepare(`SELECT count(*) AS n FROM task_machines`).get() as { n: number }).n, 0, 'machine runs go with their task');
    assert.equal((after11.prepare(`SELECT count(*) AS n FROM task_log`).get() as { n: number }).n, 0, 'log lines go with their task');
    assert.equal(after11.pragma('foreign_keys', { simple: true }), 1);
    after11.close();
  });
});

/**
 * SQLite migration 012 rebuilds tasks (to drop the list of kinds from its CHECK) with its
 * two child tables: every row must survive, and the children must still reference tasks.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { migrate, migrationsDir } from '../../../src/server/store/migrate.js';
import { connectSqlite } from '../../../src/server/store/sqlite/database.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tcert-migrate-'));
});
after(() => rm(dir, { recursive: true, force: true }));

test('migration 012 keeps every task, machine run and log line, and their foreign keys', async () => {
  const before012 = join(dir, 'before-012');
  await mkdir(before012);
  for (const file of await readdir(migrationsDir('sqlite'))) {
    if (/^\d{3}_/.test(file) && Number(file.slice(0, 3)) < 12) await copyFile(join(migrationsDir('sqlite'), file), join(before012, file));
  }
  const path = join(dir, 'store.db');
  const old = connectSqlite(path);
  await migrate(old, before012);
  await old.close();

  let db = new Database(path);
  db.exec(`INSERT INTO tasks (id, num, kind, spec, target, state, created_at, log_seq) VALUES ('T-1', 1, 'health-check', '{}', '{}', 'Success', '2026-01-01T00:00:00Z', 2);
    INSERT INTO task_machines (task_id, machine_id, machine_name, state, ticket, log_bytes, lost_contact_at) VALUES ('T-1', 'm-1', 'web-01', 'Success', 'tk-1', 12, '2026-01-01T00:00:01Z');
    INSERT INTO task_log (task_id, seq, machine_id, at, stream, text) VALUES ('T-1', 1, 'm-1', '2026-01-01T00:00:00Z', 'info', 'one'), ('T-1', 2, 'm-1', '2026-01-01T00:00:01Z', 'stdout', 'two');`);
  assert.throws(() => db.prepare(`INSERT INTO tasks (id, num, kind, spec, target, state, created_at) VALUES ('T-x', 9, 'rotate-machine-certificate', '{}', '{}', 'Queued', 'now')`).run(), /CHECK/);
  db.close();

  const current = connectSqlite(path);
  assert.deepEqual(await migrate(current), [12]);
  await current.close();

  db = new Database(path);
  db.pragma('foreign_keys = ON');
  assert.deepEqual(db.prepare('SELECT id, kind, log_seq FROM tasks').all(), [{ id: 'T-1', kind: 'health-check', log_seq: 2 }]);
  assert.deepEqual(db.prepare('SELECT ticket, log_bytes, lost_contact_at FROM task_machines').all(), [{ ticket: 'tk-1', log_bytes: 12, lost_contact_at: '2026-01-01T00:00:01Z' }]);
  assert.deepEqual(db.prepare('SELECT text FROM task_log ORDER BY seq').pluck().all(), ['one', 'two']);
  assert.deepEqual(db.pragma('foreign_key_check'), []);
  for (const table of ['task_machines', 'task_log']) {
    assert.deepEqual((db.pragma(`foreign_key_list(${table})`) as { table: string }[]).map((fk) => fk.table), ['tasks'], `${table} references tasks`);
  }
  const indexes = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' AND tbl_name IN ('tasks', 'task_machines', 'task_log') ORDER BY name`).pluck().all();
  assert.deepEqual(indexes, ['task_machines_lost_contact', 'task_machines_machine', 'task_machines_unfinished', 'tasks_state']);
  // A new kind needs no migration now; the state CHECK still holds; a task's rows go with it.
  db.prepare(`INSERT INTO tasks (id, num, kind, spec, target, state, created_at) VALUES ('T-2', 2, 'rotate-machine-certificate', '{}', '{}', 'Queued', 'now')`).run();
  assert.throws(() => db.prepare(`INSERT INTO tasks (id, num, kind, spec, target, state, created_at) VALUES ('T-3', 3, 'x', '{}', '{}', 'Nope', 'now')`).run(), /CHECK/);
  db.prepare(`DELETE FROM tasks WHERE id = 'T-1'`).run();
  assert.equal(db.prepare('SELECT count(*) FROM task_log').pluck().get(), 0);
  assert.equal(db.prepare('SELECT count(*) FROM task_machines').pluck().get(), 0);
  db.close();
});

-- Tasks of kind upgrade-tentacle (reef machines upgrade, src/server/tasks/kinds/upgrade-tentacle.ts).
-- SQLite cannot alter a CHECK, so the table is rebuilt the documented way (foreign keys are
-- off while migrations run: src/server/store/migrate.ts); the rows of task_machines and
-- task_log keep referring to "tasks" by name.
CREATE TABLE tasks_new (
  id                   TEXT PRIMARY KEY,
  num                  INTEGER NOT NULL UNIQUE,
  kind                 TEXT NOT NULL CHECK (kind IN ('run-script', 'push-file', 'health-check', 'upgrade-tentacle')),
  spec                 TEXT NOT NULL,
  target               TEXT NOT NULL,
  state                TEXT NOT NULL CHECK (state IN ('Queued', 'Running', 'Success', 'Failed', 'Cancelled', 'TimedOut')),
  created_at           TEXT NOT NULL,
  started_at           TEXT,
  finished_at          TEXT,
  cancel_requested_at  TEXT,
  error                TEXT,
  -- Last task_log.seq handed out. Appends bump it in their transaction, which serializes
  -- concurrent appends for one task (a row lock in PostgreSQL).
  log_seq              INTEGER NOT NULL DEFAULT 0
);
INSERT INTO tasks_new (id, num, kind, spec, target, state, created_at, started_at, finished_at, cancel_requested_at, error, log_seq)
  SELECT id, num, kind, spec, target, state, created_at, started_at, finished_at, cancel_requested_at, error, log_seq FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;
CREATE INDEX tasks_state ON tasks (state, num);

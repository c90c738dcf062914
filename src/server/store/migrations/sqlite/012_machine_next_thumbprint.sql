-- Tentacle certificate rotation (src/server/tasks/kinds/rotate-machine-certificate.ts): the
-- thumbprint of the certificate a Tentacle made next, recorded over its pinned link. Until
-- it is made the machine's thumbprint, a connection presenting either is that machine's.
-- UNIQUE: a pending thumbprint belongs to one machine only. The PostgreSQL migration of the
-- same number adds the same column.
ALTER TABLE machines ADD COLUMN next_thumbprint TEXT;
CREATE UNIQUE INDEX machines_next_thumbprint ON machines (next_thumbprint);

-- Task kinds: the list in tasks.kind's CHECK is dropped, so that a new kind of task (here
-- rotate-machine-certificate) needs no migration: src/server/store/input.ts checks the
-- kind on every insert. SQLite cannot drop a CHECK, so tasks is rebuilt; its two child
-- tables are rebuilt with it (dropping a parent would cascade-delete their rows, and
-- foreign keys cannot be turned off inside the migration's transaction). Renaming the new
-- parent to "tasks" rewrites the children's REFERENCES to it.
CREATE TABLE tasks_next (
  id                   TEXT PRIMARY KEY,
  num                  INTEGER NOT NULL UNIQUE,
  kind                 TEXT NOT NULL,
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
-- machine_id has no foreign key on purpose: task history outlives a deleted machine.
CREATE TABLE task_machines_next (
  task_id       TEXT NOT NULL REFERENCES tasks_next (id) ON DELETE CASCADE,
  machine_id    TEXT NOT NULL,
  machine_name  TEXT NOT NULL,
  state         TEXT NOT NULL CHECK (state IN ('Pending', 'Running', 'Success', 'Failed', 'Cancelled', 'TimedOut')),
  exit_code     INTEGER,
  error         TEXT,
  ticket        TEXT NOT NULL UNIQUE,
  started_at    TEXT,
  finished_at   TEXT,
  log_cursor    INTEGER NOT NULL DEFAULT 0,
  owner_node TEXT,
  lease_expires_at TEXT,
  log_bytes INTEGER NOT NULL DEFAULT 0,
  dropped_log_lines INTEGER NOT NULL DEFAULT 0,
  dropped_log_bytes INTEGER NOT NULL DEFAULT 0,
  lost_contact_at TEXT,
  lost_cursor INTEGER,
  late_report_at TEXT,
  late_state TEXT CHECK (late_state IN ('Success', 'Failed', 'Cancelled', 'TimedOut')),
  late_exit_code INTEGER,
  late_error TEXT,
  PRIMARY KEY (task_id, machine_id)
);
CREATE TABLE task_log_next (
  task_id     TEXT NOT NULL REFERENCES tasks_next (id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,
  machine_id  TEXT,
  at          TEXT NOT NULL,
  stream      TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr', 'info', 'error')),
  text        TEXT NOT NULL,
  PRIMARY KEY (task_id, seq)
);
INSERT INTO tasks_next SELECT * FROM tasks;
INSERT INTO task_machines_next SELECT * FROM task_machines;
INSERT INTO task_log_next SELECT * FROM task_log;
DROP TABLE task_log;
DROP TABLE task_machines;
DROP TABLE tasks;
ALTER TABLE tasks_next RENAME TO tasks;
ALTER TABLE task_machines_next RENAME TO task_machines;
ALTER TABLE task_log_next RENAME TO task_log;
CREATE INDEX tasks_state ON tasks (state, num);
CREATE INDEX task_machines_machine ON task_machines (machine_id);
CREATE INDEX task_machines_unfinished ON task_machines (state, owner_node);
CREATE INDEX task_machines_lost_contact ON task_machines (machine_id) WHERE lost_contact_at IS NOT NULL AND late_report_at IS NULL;

-- Reef store, first schema. The PostgreSQL migration of the same number creates the same
-- tables and columns (TEXT timestamps become timestamptz, TEXT JSON becomes jsonb,
-- INTEGER PRIMARY KEY becomes bigint identity).
-- Timestamps are ISO-8601 UTC text with milliseconds, so text order is time order.

CREATE TABLE environments (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX environments_name_ci ON environments (lower(name));

CREATE TABLE worker_pools (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX worker_pools_name_ci ON worker_pools (lower(name));

CREATE TABLE machines (
  id                TEXT PRIMARY KEY,
  name              TEXT NOT NULL,
  kind              TEXT NOT NULL CHECK (kind IN ('target', 'worker')),
  thumbprint        TEXT NOT NULL UNIQUE,
  comms_style       TEXT NOT NULL CHECK (comms_style IN ('polling', 'listening')),
  endpoint_host     TEXT,
  endpoint_port     INTEGER,
  carrier           TEXT,
  tentacle_version  TEXT,
  platform          TEXT,
  last_seen_at      TEXT,
  last_health       TEXT NOT NULL DEFAULT 'unknown' CHECK (last_health IN ('healthy', 'unhealthy', 'unknown')),
  last_health_at    TEXT,
  created_at        TEXT NOT NULL,
  CHECK ((comms_style = 'listening') = (endpoint_host IS NOT NULL AND endpoint_port IS NOT NULL))
);
CREATE UNIQUE INDEX machines_name_ci ON machines (lower(name));

-- RESTRICT: an environment or pool cannot vanish from under its machines.
CREATE TABLE machine_environments (
  machine_id      TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
  environment_id  TEXT NOT NULL REFERENCES environments (id) ON DELETE RESTRICT,
  PRIMARY KEY (machine_id, environment_id)
);
CREATE INDEX machine_environments_env ON machine_environments (environment_id);

CREATE TABLE machine_roles (
  machine_id  TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
  role        TEXT NOT NULL,
  PRIMARY KEY (machine_id, role)
);
CREATE INDEX machine_roles_role_ci ON machine_roles (lower(role));

CREATE TABLE machine_worker_pools (
  machine_id  TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
  pool_id     TEXT NOT NULL REFERENCES worker_pools (id) ON DELETE RESTRICT,
  PRIMARY KEY (machine_id, pool_id)
);
CREATE INDEX machine_worker_pools_pool ON machine_worker_pools (pool_id);

CREATE TABLE health_checks (
  id          INTEGER PRIMARY KEY,
  machine_id  TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
  ok          INTEGER NOT NULL CHECK (ok IN (0, 1)),
  details     TEXT,
  at          TEXT NOT NULL
);
CREATE INDEX health_checks_machine ON health_checks (machine_id, id);

CREATE TABLE api_keys (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  prefix        TEXT NOT NULL UNIQUE,
  hash          TEXT NOT NULL,
  salt          TEXT NOT NULL,
  created_at    TEXT NOT NULL,
  last_used_at  TEXT,
  revoked_at    TEXT
);

-- One row per named counter; incremented inside the transaction that uses the value,
-- so numbers are gap-free and never repeat, also with several server nodes.
CREATE TABLE counters (
  name   TEXT PRIMARY KEY,
  value  INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('task', 0);

CREATE TABLE tasks (
  id                   TEXT PRIMARY KEY,
  num                  INTEGER NOT NULL UNIQUE,
  kind                 TEXT NOT NULL CHECK (kind IN ('run-script', 'push-file', 'health-check')),
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
CREATE INDEX tasks_state ON tasks (state, num);

-- machine_id has no foreign key on purpose: task history outlives a deleted machine.
CREATE TABLE task_machines (
  task_id       TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  machine_id    TEXT NOT NULL,
  machine_name  TEXT NOT NULL,
  state         TEXT NOT NULL CHECK (state IN ('Pending', 'Running', 'Success', 'Failed', 'Cancelled', 'TimedOut')),
  exit_code     INTEGER,
  error         TEXT,
  ticket        TEXT NOT NULL UNIQUE,
  started_at    TEXT,
  finished_at   TEXT,
  log_cursor    INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (task_id, machine_id)
);
CREATE INDEX task_machines_machine ON task_machines (machine_id);

CREATE TABLE task_log (
  task_id     TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,
  machine_id  TEXT,
  at          TEXT NOT NULL,
  stream      TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr', 'info', 'error')),
  text        TEXT NOT NULL,
  PRIMARY KEY (task_id, seq)
);

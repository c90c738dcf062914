-- Reef store, first schema: the same tables and columns as migrations/sqlite/001_initial.sql
-- (TEXT timestamps become timestamptz, INTEGER PRIMARY KEY becomes bigint identity, counters
-- and sequence numbers become bigint).
--
-- JSON columns are json, not json: the store keeps a JsonObject exactly as written (key
-- order, \u0000 escapes) as SQLite's TEXT does, and nothing queries inside it.
--
-- Names, roles and ids are COLLATE "C": lower() then folds ASCII only and ORDER BY compares
-- bytes, exactly as SQLite's lower() and BINARY collation do, whatever the database's
-- locale. So a name that is unique on SQLite is unique here, and lists sort the same.

CREATE TABLE environments (
  id          text COLLATE "C" PRIMARY KEY,
  name        text COLLATE "C" NOT NULL,
  created_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX environments_name_ci ON environments (lower(name));

CREATE TABLE worker_pools (
  id          text COLLATE "C" PRIMARY KEY,
  name        text COLLATE "C" NOT NULL,
  created_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX worker_pools_name_ci ON worker_pools (lower(name));

CREATE TABLE machines (
  id                text COLLATE "C" PRIMARY KEY,
  name              text COLLATE "C" NOT NULL,
  kind              text NOT NULL CHECK (kind IN ('target', 'worker')),
  thumbprint        text COLLATE "C" NOT NULL UNIQUE,
  comms_style       text NOT NULL CHECK (comms_style IN ('polling', 'listening')),
  endpoint_host     text,
  endpoint_port     integer,
  carrier           text,
  tentacle_version  text,
  platform          json,
  last_seen_at      timestamptz,
  last_health       text NOT NULL DEFAULT 'unknown' CHECK (last_health IN ('healthy', 'unhealthy', 'unknown')),
  last_health_at    timestamptz,
  created_at        timestamptz NOT NULL,
  CHECK ((comms_style = 'listening') = (endpoint_host IS NOT NULL AND endpoint_port IS NOT NULL))
);
CREATE UNIQUE INDEX machines_name_ci ON machines (lower(name));

-- RESTRICT: an environment or pool cannot vanish from under its machines.
CREATE TABLE machine_environments (
  machine_id      text COLLATE "C" NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
  environment_id  text COLLATE "C" NOT NULL REFERENCES environments (id) ON DELETE RESTRICT,
  PRIMARY KEY (machine_id, environment_id)
);
CREATE INDEX machine_environments_env ON machine_environments (environment_id);

CREATE TABLE machine_roles (
  machine_id  text COLLATE "C" NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
  role        text COLLATE "C" NOT NULL,
  PRIMARY KEY (machine_id, role)
);
CREATE INDEX machine_roles_role_ci ON machine_roles (lower(role));

CREATE TABLE machine_worker_pools (
  machine_id  text COLLATE "C" NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
  pool_id     text COLLATE "C" NOT NULL REFERENCES worker_pools (id) ON DELETE RESTRICT,
  PRIMARY KEY (machine_id, pool_id)
);
CREATE INDEX machine_worker_pools_pool ON machine_worker_pools (pool_id);

CREATE TABLE health_checks (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  machine_id  text COLLATE "C" NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
  ok          boolean NOT NULL,
  details     json,
  at          timestamptz NOT NULL
);
CREATE INDEX health_checks_machine ON health_checks (machine_id, id);

CREATE TABLE api_keys (
  id            text COLLATE "C" PRIMARY KEY,
  name          text NOT NULL,
  prefix        text COLLATE "C" NOT NULL UNIQUE,
  hash          text NOT NULL,
  salt          text NOT NULL,
  created_at    timestamptz NOT NULL,
  last_used_at  timestamptz,
  revoked_at    timestamptz
);

-- One row per named counter; incremented inside the transaction that uses the value, so
-- numbers are gap-free and never repeat: the row lock queues task creation across nodes.
CREATE TABLE counters (
  name   text PRIMARY KEY,
  value  bigint NOT NULL
);
INSERT INTO counters (name, value) VALUES ('task', 0);

CREATE TABLE tasks (
  id                   text COLLATE "C" PRIMARY KEY,
  num                  bigint NOT NULL UNIQUE,
  kind                 text NOT NULL CHECK (kind IN ('run-script', 'push-file', 'health-check')),
  spec                 json NOT NULL,
  target               json NOT NULL,
  state                text NOT NULL CHECK (state IN ('Queued', 'Running', 'Success', 'Failed', 'Cancelled', 'TimedOut')),
  created_at           timestamptz NOT NULL,
  started_at           timestamptz,
  finished_at          timestamptz,
  cancel_requested_at  timestamptz,
  error                text,
  -- Last task_log.seq handed out. Appends bump it in their transaction; the row lock that
  -- UPDATE takes serializes concurrent appends for one task, from any node.
  log_seq              bigint NOT NULL DEFAULT 0
);
CREATE INDEX tasks_state ON tasks (state, num);

-- machine_id has no foreign key on purpose: task history outlives a deleted machine.
CREATE TABLE task_machines (
  task_id       text COLLATE "C" NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  machine_id    text COLLATE "C" NOT NULL,
  machine_name  text COLLATE "C" NOT NULL,
  state         text NOT NULL CHECK (state IN ('Pending', 'Running', 'Success', 'Failed', 'Cancelled', 'TimedOut')),
  exit_code     integer,
  error         text,
  ticket        text COLLATE "C" NOT NULL UNIQUE,
  started_at    timestamptz,
  finished_at   timestamptz,
  log_cursor    bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (task_id, machine_id)
);
CREATE INDEX task_machines_machine ON task_machines (machine_id);

CREATE TABLE task_log (
  task_id     text COLLATE "C" NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  seq         bigint NOT NULL,
  machine_id  text COLLATE "C",
  at          timestamptz NOT NULL,
  stream      text NOT NULL CHECK (stream IN ('stdout', 'stderr', 'info', 'error')),
  text        text NOT NULL,
  PRIMARY KEY (task_id, seq)
);

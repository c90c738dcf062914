-- Several server nodes on one database: the same tables and columns as
-- migrations/sqlite/003_cluster.sql. Leases are compared with the database's clock
-- (now()), so nodes whose clocks disagree still agree on who owns what.

CREATE TABLE nodes (
  name          text COLLATE "C" PRIMARY KEY,
  incarnation   text NOT NULL,
  info          json NOT NULL,
  started_at    timestamptz NOT NULL,
  heartbeat_at  timestamptz NOT NULL,
  stopped_at    timestamptz
);

CREATE TABLE tentacle_links (
  node_name     text COLLATE "C" NOT NULL REFERENCES nodes (name) ON DELETE CASCADE,
  thumbprint    text COLLATE "C" NOT NULL,
  carrier       text NOT NULL,
  connected_at  timestamptz NOT NULL,
  PRIMARY KEY (thumbprint, node_name)
);
CREATE INDEX tentacle_links_node ON tentacle_links (node_name);

ALTER TABLE task_machines ADD COLUMN owner_node text COLLATE "C";
ALTER TABLE task_machines ADD COLUMN lease_expires_at timestamptz;
CREATE INDEX task_machines_unfinished ON task_machines (state, owner_node);

CREATE TABLE cluster_settings (
  key         text PRIMARY KEY,
  value       text NOT NULL,
  created_at  timestamptz NOT NULL
);

-- Several server nodes on one store (PostgreSQL in practice; SQLite has one node, and the
-- same tables let the one engine code path serve both). The PostgreSQL migration of the
-- same number creates the same tables (TEXT timestamps become timestamptz).

-- One row per node name. `incarnation` changes on every start, so a node can tell that
-- another process took its name.
CREATE TABLE nodes (
  name          TEXT PRIMARY KEY,
  incarnation   TEXT NOT NULL,
  info          TEXT NOT NULL,
  started_at    TEXT NOT NULL,
  heartbeat_at  TEXT NOT NULL,
  stopped_at    TEXT
);

-- Which node holds a live connection from which tentacle: where work for it can run.
CREATE TABLE tentacle_links (
  node_name     TEXT NOT NULL REFERENCES nodes (name) ON DELETE CASCADE,
  thumbprint    TEXT NOT NULL,
  carrier       TEXT NOT NULL,
  connected_at  TEXT NOT NULL,
  PRIMARY KEY (thumbprint, node_name)
);
CREATE INDEX tentacle_links_node ON tentacle_links (node_name);

-- The node supervising a machine's part of a task, until its lease expires.
ALTER TABLE task_machines ADD COLUMN owner_node TEXT;
ALTER TABLE task_machines ADD COLUMN lease_expires_at TEXT;
CREATE INDEX task_machines_unfinished ON task_machines (state, owner_node);

-- Values every node must share, written once by the first node (the cluster certificate).
CREATE TABLE cluster_settings (
  key         TEXT PRIMARY KEY,
  value       TEXT NOT NULL,
  created_at  TEXT NOT NULL
);

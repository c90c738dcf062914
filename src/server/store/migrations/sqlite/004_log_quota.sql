-- The per-machine-run log quota (see logs.ts): what a machine's Tentacle output already
-- holds in task_log, and what was dropped once the quota was reached. Kept on the row the
-- append locks anyway, so the quota holds across a server restart and on every node.
ALTER TABLE task_machines ADD COLUMN log_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE task_machines ADD COLUMN dropped_log_lines INTEGER NOT NULL DEFAULT 0;
ALTER TABLE task_machines ADD COLUMN dropped_log_bytes INTEGER NOT NULL DEFAULT 0;

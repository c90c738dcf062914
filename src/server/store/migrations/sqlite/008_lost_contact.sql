-- Lost contact and late reports (docs/reliability.md). lost_contact_at: since when the
-- server has not reached the Tentacle running this machine's script (NULL while in
-- contact); kept on a run failed for lost contact, which marks it as awaiting a late
-- report. lost_cursor: log_cursor when contact was lost, so the lines past it are the ones
-- collected after. late_*: what the Tentacle reported after the run had failed: when, and
-- the script's real outcome (state, exit code, error).
ALTER TABLE task_machines ADD COLUMN lost_contact_at TEXT;
ALTER TABLE task_machines ADD COLUMN lost_cursor INTEGER;
ALTER TABLE task_machines ADD COLUMN late_report_at TEXT;
ALTER TABLE task_machines ADD COLUMN late_state TEXT CHECK (late_state IN ('Success', 'Failed', 'Cancelled', 'TimedOut'));
ALTER TABLE task_machines ADD COLUMN late_exit_code INTEGER;
ALTER TABLE task_machines ADD COLUMN late_error TEXT;
CREATE INDEX task_machines_lost_contact ON task_machines (machine_id) WHERE lost_contact_at IS NOT NULL AND late_report_at IS NULL;

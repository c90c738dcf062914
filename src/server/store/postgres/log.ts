/**
 * The task log's hot SQL. Appends run on every batch of script output from every node, so
 * each is as few round trips as it can be while staying exact under concurrency:
 *
 * - The machine's task_machines row is locked first (FOR UPDATE): two nodes carrying the same
 *   machine's output (a retried fetch after a failover) queue here, and the second one sees
 *   the cursor the first one advanced, so no line is stored twice.
 * - `UPDATE tasks SET log_seq = log_seq + n ... RETURNING` reserves n numbers under the task
 *   row's lock: appends for different machines of one task, from any node, never share or
 *   skip a number. The lock is held to COMMIT, so a reader never sees seq n+1 before n.
 *
 * Lock order is always task_machines row, then tasks row; nothing takes them the other way.
 */

export const LOCK_MACHINE_CURSOR = `
SELECT log_cursor FROM task_machines WHERE task_id = $1 AND machine_id = $2 FOR UPDATE`;

/** $1 task, $2 machine, $3 count, $4 new cursor, $5..$7 arrays of at, stream, text. Returns base (first seq - 1). */
export const APPEND_MACHINE_LINES = `
WITH reserved AS (
  UPDATE tasks SET log_seq = log_seq + $3::bigint WHERE id = $1::text RETURNING log_seq - $3::bigint AS base
), moved AS (
  UPDATE task_machines SET log_cursor = $4::bigint WHERE task_id = $1::text AND machine_id = $2::text
), stored AS (
  INSERT INTO task_log (task_id, seq, machine_id, at, stream, text)
  SELECT $1::text, reserved.base + l.n, $2::text, l.at, l.stream, l.text
  FROM reserved, unnest($5::timestamptz[], $6::text[], $7::text[]) WITH ORDINALITY AS l (at, stream, text, n)
)
SELECT base FROM reserved`;

/** $1 task, $2 machine or null, $3 at, $4 stream, $5 text. No row: no such task. */
export const APPEND_TASK_LINE = `
WITH reserved AS (
  UPDATE tasks SET log_seq = log_seq + 1 WHERE id = $1::text RETURNING log_seq
)
INSERT INTO task_log (task_id, seq, machine_id, at, stream, text)
SELECT $1::text, log_seq, $2::text, $3::timestamptz, $4::text, $5::text FROM reserved
RETURNING seq`;

export const READ_LOG = `
SELECT task_id, seq, machine_id, at, stream, text FROM task_log
WHERE task_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`;

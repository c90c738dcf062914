import { sql, type LineToStore, type MachineLogUsage, type Sql } from '../sql.js';

/**
 * The task log's hot SQL: appends run on every batch of script output from every node, so
 * storing a batch is one statement. `UPDATE tasks SET log_seq = log_seq + n ... RETURNING`
 * reserves n numbers under the task row's lock, held to COMMIT, so a reader never sees seq
 * n+1 before n. (The caller has already locked the machine's task_machines row.) No row
 * back: no such task.
 */
export function appendLines(taskId: string, machineId: string | null, lines: readonly LineToStore[], usage: MachineLogUsage | null): Sql {
  const count = lines.length;
  return sql`WITH reserved AS (
  UPDATE tasks SET log_seq = log_seq + ${count}::bigint WHERE id = ${taskId}::text RETURNING log_seq - ${count}::bigint AS base
), moved AS (
  UPDATE task_machines SET log_cursor = ${usage?.cursor ?? null}::bigint, log_bytes = ${usage?.bytes ?? null}::bigint,
    dropped_log_lines = ${usage?.droppedLines ?? null}::bigint, dropped_log_bytes = ${usage?.droppedBytes ?? null}::bigint
  WHERE ${usage !== null}::boolean AND task_id = ${taskId}::text AND machine_id = ${machineId}::text
)
INSERT INTO task_log (task_id, seq, machine_id, at, stream, text)
SELECT ${taskId}::text, reserved.base + l.n, ${machineId}::text, l.at, l.stream, l.text
FROM reserved, unnest(${lines.map((l) => l.at)}::timestamptz[], ${lines.map((l) => l.stream)}::text[],
  ${lines.map((l) => l.text)}::text[]) WITH ORDINALITY AS l (at, stream, text, n)
RETURNING task_id, seq, machine_id, at, stream, text`;
}

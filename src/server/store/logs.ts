/**
 * The task log. Lines get a per-task seq under the task row's lock (`tasks.log_seq`), so
 * appends for different machines of one task, from any node, never share or skip a number;
 * a machine's lines are filtered against its log cursor under that task machine's lock, so
 * a retried fetch (also after a failover to another node) stores no line twice. Lock order
 * is always the task_machines row, then the tasks row. How the lines are stored is the
 * dialect's (`Dialect.appendLog`): one statement on PostgreSQL, where this is the hot path.
 */
import { ReefError } from '../../errors.js';
import { checkStream, clampLimit, invalid, toTimestamp } from './input.js';
import { toLogLine, type LogRow } from './rows.js';
import { sql, type Database, type LineToStore } from './sql.js';
import type { Store } from './types.js';

type Logs = Pick<Store, 'appendMachineLog' | 'appendTaskLog' | 'readLog'>;

export function logs(database: Database): Logs {
  const d = database.dialect;
  return {
    appendMachineLog: async (taskId, machineId, lines) => {
      const checked = lines.map((l) => {
        if (!Number.isSafeInteger(l.tentacleSeq) || l.tentacleSeq < 1) {
          throw invalid(`tentacleSeq must be a positive integer, got ${l.tentacleSeq}.`);
        }
        if (typeof l.text !== 'string') throw invalid('Log text must be a string.');
        return { tentacleSeq: l.tentacleSeq, at: toTimestamp(l.at), stream: checkStream(l.stream), text: l.text };
      });
      checked.sort((a, b) => a.tentacleSeq - b.tentacleSeq);
      return database.transaction(async (db) => {
        const locked = await db.one<{ log_cursor: number }>(sql`SELECT log_cursor FROM task_machines
          WHERE task_id = ${taskId} AND machine_id = ${machineId} ${d.forUpdate}`);
        if (!locked) throw new ReefError('REEF_NOT_FOUND', `Task ${taskId} has no machine ${machineId}.`);
        const fresh: LineToStore[] = [];
        let high = locked.log_cursor;
        for (const line of checked) {
          if (line.tentacleSeq <= high) continue;
          fresh.push({ at: line.at, stream: line.stream, text: line.text });
          high = line.tentacleSeq;
        }
        if (fresh.length === 0) return [];
        return (await d.appendLog(db, taskId, machineId, fresh, high)).map(toLogLine);
      });
    },

    appendTaskLog: async (taskId, machineId, stream, text, at) => {
      const line: LineToStore = { at: toTimestamp(at), stream: checkStream(stream), text: String(text) };
      const [stored] = await database.transaction((db) => d.appendLog(db, taskId, machineId, [line], null));
      if (!stored) throw new ReefError('REEF_NOT_FOUND', `No task has id ${taskId}.`);
      return toLogLine(stored);
    },

    readLog: async (taskId, afterSeq = 0, limit) => {
      const rows = await database.all<LogRow>(sql`SELECT task_id, seq, machine_id, at, stream, text FROM task_log
        WHERE task_id = ${taskId} AND seq > ${afterSeq} ORDER BY seq LIMIT ${clampLimit(limit, 1000, 10000)}`);
      return rows.map(toLogLine);
    },
  };
}

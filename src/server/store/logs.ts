/**
 * The task log. Lines get a per-task seq under the task row's lock (`tasks.log_seq`), so
 * appends for different machines of one task, from any node, never share or skip a number;
 * a machine's lines are filtered against its log cursor under that task machine's lock, so
 * a retried fetch (also after a failover to another node) stores no line twice. Lock order
 * is always the task_machines row, then the tasks row. How the lines are stored is the
 * dialect's (`Dialect.appendLog`): one statement on PostgreSQL, where this is the hot path;
 * a task-level line needs no other lock, so there that statement runs without a transaction.
 *
 * The same locked row keeps the machine's log quota (`log_bytes`, `dropped_log_*`), so it
 * holds across restarts and nodes; and reads come in pages bounded by bytes as well as
 * lines, so no reader ever holds more than about LOG_PAGE_BYTES of text per read.
 */
import { ReefError } from '../../errors.js';
import { formatBytes } from '../../format.js';
import { checkStream, clampLimit, invalid, toTimestamp } from './input.js';
import { toLogLine, type LogRow } from './rows.js';
import { sql, type Database, type Db, type LineToStore, type MachineLogUsage } from './sql.js';
import type { Store } from './types.js';

type Logs = Pick<Store, 'appendMachineLog' | 'appendTaskLog' | 'readLog'>;

export function logs(database: Database): Logs {
  const d = database.dialect;
  return {
    appendMachineLog: async (taskId, machineId, lines, options = {}) => {
      const quota = options.quotaBytes ?? Number.POSITIVE_INFINITY;
      const checked = lines.map((l) => {
        if (!Number.isSafeInteger(l.tentacleSeq) || l.tentacleSeq < 1) {
          throw invalid(`tentacleSeq must be a positive integer, got ${l.tentacleSeq}.`);
        }
        if (typeof l.text !== 'string') throw invalid('Log text must be a string.');
        return { tentacleSeq: l.tentacleSeq, at: toTimestamp(l.at), stream: checkStream(l.stream), text: l.text };
      });
      checked.sort((a, b) => a.tentacleSeq - b.tentacleSeq);
      return database.transaction(async (db) => {
        const row = await db.one<UsageRow>(sql`SELECT log_cursor, log_bytes, dropped_log_lines, dropped_log_bytes FROM task_machines
          WHERE task_id = ${taskId} AND machine_id = ${machineId} ${d.forUpdate}`);
        if (!row) throw new ReefError('REEF_NOT_FOUND', `Task ${taskId} has no machine ${machineId}.`);
        const usage: MachineLogUsage = { cursor: row.log_cursor, bytes: row.log_bytes, droppedLines: row.dropped_log_lines, droppedBytes: row.dropped_log_bytes };
        const fresh: LineToStore[] = [];
        for (const line of checked) {
          if (line.tentacleSeq <= usage.cursor) continue;
          usage.cursor = line.tentacleSeq;
          const bytes = Buffer.byteLength(line.text, 'utf8');
          if (usage.droppedLines === 0 && usage.bytes + bytes <= quota) {
            fresh.push({ at: line.at, stream: line.stream, text: line.text });
            usage.bytes += bytes;
            continue;
          }
          if (usage.droppedLines === 0) fresh.push({ at: line.at, stream: 'info', text: quotaReached(quota, usage.bytes) });
          usage.droppedLines += 1;
          usage.droppedBytes += bytes;
        }
        if (usage.cursor === row.log_cursor) return [];
        // Also with no line to store (all dropped): the cursor and the counters move on.
        return (await d.appendLog(db, taskId, machineId, fresh, usage)).map(toLogLine);
      });
    },

    appendTaskLog: async (taskId, machineId, stream, text, at) => {
      const line: LineToStore = { at: toTimestamp(at), stream: checkStream(stream), text: String(text) };
      // Every line of a task takes the task row's lock for its seq, from every node. Run alone,
      // PostgreSQL's one statement holds it only while PostgreSQL runs it; in a transaction it
      // would hold it until this process sent COMMIT, a round trip through an event loop that a
      // large fan-out keeps busy, and every other line of the task (and, queued behind them,
      // the nodes' pooled connections) would wait that long.
      const append = (db: Db) => d.appendLog(db, taskId, machineId, [line], null);
      const [stored] = d.appendLogIsOneStatement ? await append(database) : await database.transaction(append);
      if (!stored) throw new ReefError('REEF_NOT_FOUND', `No task has id ${taskId}.`);
      return toLogLine(stored);
    },

    readLog: async (taskId, afterSeq = 0, limit, maxBytes = LOG_PAGE_BYTES) => {
      // Sizes first, then only the rows that fit: a page never holds more than about
      // maxBytes of text in memory, however large the lines stored.
      const sizes = await database.all<{ seq: number; bytes: number }>(sql`SELECT seq, octet_length(text) AS bytes FROM task_log
        WHERE task_id = ${taskId} AND seq > ${afterSeq} ORDER BY seq LIMIT ${clampLimit(limit, 1000, 10000)}`);
      if (sizes.length === 0) return [];
      const budget = Math.min(maxBytes, LOG_PAGE_BYTES);
      let last = sizes[0]!.seq;
      let total = 0;
      for (const { seq, bytes } of sizes) {
        total += Number(bytes);
        if (total > budget && seq !== sizes[0]!.seq) break;
        last = seq;
      }
      const rows = await database.all<LogRow>(sql`SELECT task_id, seq, machine_id, at, stream, text FROM task_log
        WHERE task_id = ${taskId} AND seq > ${afterSeq} AND seq <= ${last} ORDER BY seq`);
      return rows.map(toLogLine);
    },
  };
}

/** Most text one read of the log returns (readLog's maxBytes): pages, SSE batches and the portal read this much at a time. */
const LOG_PAGE_BYTES = 1024 * 1024;

/** What appendMachineLog keeps on the task machine's row. */
interface UsageRow {
  log_cursor: number;
  log_bytes: number;
  dropped_log_lines: number;
  dropped_log_bytes: number;
}

/** The one line stored when a machine's output reaches the log quota. */
function quotaReached(quotaBytes: number, storedBytes: number): string {
  return (
    `Log quota reached: this machine's log holds ${formatBytes(storedBytes)} of output and the next line would pass the quota of ` +
    `${formatBytes(quotaBytes)} per machine run (the server's log quota). The rest of the script's output is dropped, not stored; ` +
    'the script keeps running and its outcome is recorded, with a count of what was dropped.'
  );
}

import type { IncomingMessage } from 'node:http';
import { readEvents, type ApiClient } from '../api/client.js';
import { FINAL_TASK_STATES, type LogLineView, type LogPage, type TaskState, type TaskView } from '../api/contract.js';
import { contactNotes } from '../api/contact-note.js';
import { ReefError } from '../errors.js';
import { note } from './common.js';
import { cell, formatTable } from './output.js';
import { httpStatus, segment } from './reef-connection.js';

/**
 * Following a task's log: `reef tasks watch` and `--follow`.
 *
 * Reads  GET /api/tasks/:id/log/stream?after=N  (Server-Sent Events, `Last-Event-ID: N` too):
 *   event `log` (or unnamed) with a LogLineView (or an array of them) as data, `id` = seq;
 *   event `state` with a TaskView (or `{ state }`) when the task's state changes;
 *   event `end` once the task is final and every line was sent (src/server/http/sse.ts).
 * Every printed line advances `lastSeq`, and every (re)connection asks for lines after it,
 * so a dropped stream is resumed with no line printed twice or lost. Whenever the stream
 * ends, the task is re-read: once it is final, the rest of the log is read page by page
 * from GET /api/tasks/:id/log?after=N (LogPage) and the follow ends; otherwise it reconnects.
 *
 * Output (stdout, one line per log line, in sequence order):
 *   [machine] text     the script's stdout
 *   [machine] ! text   the script's stderr, and errors Reef reports for that machine
 *   [machine] * text   Reef's own messages (started, uploaded, ...)
 * Lines that belong to no machine are prefixed [task]. With --json, stdout is NDJSON:
 * `{"type":"log",...LogLineView,"machineName"}` per line, then `{"type":"task","task":TaskView}`.
 * A per-machine summary follows on stderr.
 */

export interface FollowOptions {
  json: boolean;
  /** Give up after this long without reaching the server; default 5 minutes. */
  giveUpAfterMs?: number;
  /** A stream with no bytes for this long is treated as dropped; default 60 s. */
  idleTimeoutMs?: number;
}

const STREAM_EVENTS = new Set(['log', 'message', 'line', 'lines']);
const STATE_EVENTS = new Set(['state', 'task', 'status']);

export async function followTask(api: ApiClient, taskId: string, options: FollowOptions): Promise<TaskView> {
  const base = `/api/tasks/${segment(taskId)}`;
  let task = await api.json<TaskView>('GET', base);
  const names = new Map<string, string>();
  const learnNames = (view: TaskView) => {
    for (const m of view.machines ?? []) names.set(m.machineId, m.machineName);
  };
  learnNames(task);

  let lastSeq = 0;
  const nameOf = async (machineId: string | null): Promise<string> => {
    if (machineId === null) return 'task';
    if (!names.has(machineId)) {
      // A machine we have not seen: the task view may have grown since we read it.
      task = await api.json<TaskView>('GET', base);
      learnNames(task);
      if (!names.has(machineId)) names.set(machineId, machineId);
    }
    return names.get(machineId)!;
  };
  const emit = async (line: LogLineView): Promise<boolean> => {
    if (typeof line?.seq !== 'number' || line.seq <= lastSeq) return false;
    lastSeq = line.seq;
    const machineName = await nameOf(line.machineId ?? null);
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ type: 'log', ...line, machineName })}\n`);
      return true;
    }
    const mark = line.stream === 'stderr' || line.stream === 'error' ? '! ' : line.stream === 'info' ? '* ' : '';
    const text = String(line.text ?? '').replace(/\r?\n$/, '');
    process.stdout.write(text.split(/\r?\n/).map((part) => `[${machineName}] ${mark}${part}\n`).join(''));
    return true;
  };

  const stopOnInterrupt = () => {
    note(`\nStopped following task ${taskId}; it keeps running on the server. Re-attach with "reef tasks watch ${taskId}".`);
    process.exit(130);
  };
  process.once('SIGINT', stopOnInterrupt);
  try {
    const giveUpAfter = options.giveUpAfterMs ?? 300_000;
    let troubleSince: number | null = null;
    let attempt = 0;
    while (!isFinal(task.state)) {
      let res: IncomingMessage | undefined;
      let problem: unknown;
      try {
        res = await api.request('GET', `${base}/log/stream?after=${lastSeq}`, {
          headers: { accept: 'text/event-stream', 'last-event-id': String(lastSeq) },
          timeoutMs: options.idleTimeoutMs ?? 60_000,
        });
        attempt = 0;
        troubleSince = null;
        for await (const event of readEvents(res)) {
          if (STREAM_EVENTS.has(event.event)) {
            for (const line of linesOf(parse(event.data))) await emit(line);
          } else if (event.event === 'end') {
            break;
          } else if (STATE_EVENTS.has(event.event)) {
            const data = parse(event.data);
            if (Array.isArray((data as TaskView | undefined)?.machines)) learnNames(data as TaskView);
            if (isFinal(stateOf(data))) break;
          }
        }
      } catch (err) {
        const status = httpStatus(err);
        if (status !== undefined && status < 500) throw err; // not found, unauthorised: retrying will not help
        problem = err;
      } finally {
        res?.destroy();
      }

      try {
        task = await api.json<TaskView>('GET', base);
        learnNames(task);
      } catch (err) {
        const status = httpStatus(err);
        if (status !== undefined && status < 500) throw err;
        problem ??= err;
      }
      if (isFinal(task.state)) break;

      if (problem) {
        troubleSince ??= Date.now();
        if (Date.now() - troubleSince > giveUpAfter) {
          throw new ReefError(
            'REEF_LOG_STREAM_LOST',
            `Lost the log stream of task ${taskId} (${problem instanceof Error ? problem.message : String(problem)}). ` +
              `The task keeps running; re-attach with "reef tasks watch ${taskId}".`,
          );
        }
        note(`Log stream interrupted (${problem instanceof Error ? problem.message : String(problem)}); reconnecting...`);
      }
      attempt += 1;
      await sleep(Math.min(5000, 100 * 2 ** Math.min(attempt, 6)));
    }

    // Final: whatever the stream did not deliver is read page by page.
    for (;;) {
      const page = await api.json<LogPage>('GET', `${base}/log?after=${lastSeq}`);
      const before = lastSeq;
      for (const line of page?.items ?? []) await emit(line);
      if (!page?.items?.length || lastSeq === before) break;
    }
    if (options.json) process.stdout.write(`${JSON.stringify({ type: 'task', task })}\n`);
    else note(taskSummary(task));
    return task;
  } finally {
    process.off('SIGINT', stopOnInterrupt);
  }
}

/** Throws the uniform failure (exit code 1) unless the task succeeded. */
export function assertSucceeded(task: TaskView): void {
  if (task.state === 'Success') return;
  const why = task.error ? `: ${task.error}` : '';
  const code = task.state === 'Cancelled' ? 'REEF_TASK_CANCELLED' : task.state === 'TimedOut' ? 'REEF_TASK_TIMEDOUT' : 'REEF_TASK_FAILED';
  throw new ReefError(code, `Task ${task.id} ended ${task.state}${why}.`);
}

export function taskSummary(task: TaskView): string {
  const rows = (task.machines ?? []).map((m) => [
    m.machineName,
    m.state,
    m.exitCode === null || m.exitCode === undefined ? '-' : `exit ${m.exitCode}`,
    cell(m.error),
  ]);
  const table = rows.length
    ? formatTable(['MACHINE', 'STATE', 'EXIT', 'ERROR'], rows)
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n')
    : '  (no machines)';
  const notes = contactNotes(task).map((n) => `  ${n}`);
  return [`Task ${task.id} ${task.state}`, table, ...notes].join('\n');
}

export function isFinal(state: unknown): state is TaskState {
  return typeof state === 'string' && (FINAL_TASK_STATES as readonly string[]).includes(state);
}

function parse(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}

function linesOf(value: unknown): LogLineView[] {
  if (Array.isArray(value)) return value as LogLineView[];
  const items = (value as { items?: unknown } | undefined)?.items;
  if (Array.isArray(items)) return items as LogLineView[];
  return value && typeof value === 'object' ? [value as LogLineView] : [];
}

function stateOf(value: unknown): unknown {
  const v = value as { state?: unknown; taskState?: unknown; task?: { state?: unknown } } | undefined;
  return v?.state ?? v?.taskState ?? v?.task?.state;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

import { FINAL_TASK_STATES } from '../../api/contract.js';
import type { LogLine, TaskWithMachines } from '../store/types.js';
import type { ApiContext } from './context.js';
import { logLineView, taskView } from './views.js';

/** Lines (and bytes of text) held for a slow client before the stream falls back to re-reading the store. */
const MAX_PENDING_LINES = 10_000;
const MAX_PENDING_BYTES = 4 * 1024 * 1024;
/** Lines per store read; each read is also bounded by bytes (readLog's default, 1 MiB). */
const REPLAY_PAGE = 1000;
/** Events are written in pieces of about this size, each waiting for 'drain' when the socket is full. */
const WRITE_PIECE_BYTES = 64 * 1024;

/**
 * GET /api/tasks/:id/log/stream: the task's log as Server-Sent Events (their data: LOG_STREAM_EVENTS).
 *
 * One pump writes everything, in order, one step at a time. Engine events only queue
 * work for it. The listeners are attached before the first store read, so a line stored
 * during the replay arrives as an event too; every line goes through `lastSent`, so none
 * is sent twice and a gap in sequence numbers is filled from the store. When the task is
 * final the log is read once more (the engine stores lines before it finishes a task),
 * then come a last `state` and `end`.
 */
export async function streamTaskLog(ctx: ApiContext, task: TaskWithMachines, after: number): Promise<void> {
  const { req, res, deps, logger } = ctx;
  const { store, engine } = deps;
  const taskId = task.id;
  let lastSent = startSeq(ctx, after);

  let pending: LogLine[] = [];
  let pendingBytes = 0;
  let rereadStore = true;
  let stateDirty = true;
  let pumping = false;
  let done = false;

  res.statusCode = 200;
  res.setHeader('content-type', 'text/event-stream; charset=utf-8');
  res.setHeader('x-accel-buffering', 'no');
  if (req.method === 'HEAD') {
    // The stream's headers and no body (RFC 9110 9.3.2); following the log would never end.
    res.end();
    return;
  }
  res.flushHeaders();
  req.socket.setNoDelay(true);
  res.write('retry: 2000\n\n');

  const onLog = (id: string, lines: LogLine[]) => {
    if (id !== taskId || done || rereadStore) return;
    for (const line of lines) {
      pending.push(line);
      pendingBytes += line.text.length;
    }
    if (pending.length > MAX_PENDING_LINES || pendingBytes > MAX_PENDING_BYTES) {
      pending = [];
      pendingBytes = 0;
      rereadStore = true;
    }
    pump();
  };
  const onChanged = (id: string) => {
    if (id !== taskId || done) return;
    stateDirty = true;
    pump();
  };
  // Another node stored lines: read them from the store.
  const onStored = (id: string | null) => {
    if ((id !== null && id !== taskId) || done) return;
    rereadStore = true;
    stateDirty = true;
    pump();
  };
  const heartbeat = setInterval(() => write(': ping\n\n'), deps.limits.sseHeartbeatMs);
  const finish = () => {
    if (done) return;
    done = true;
    clearInterval(heartbeat);
    engine.events.off('log', onLog);
    engine.events.off('changed', onChanged);
    engine.events.off('stored', onStored);
    res.off('close', finish);
    pending = [];
    pendingBytes = 0;
    if (!res.writableEnded) res.end();
  };
  engine.events.on('log', onLog);
  engine.events.on('changed', onChanged);
  engine.events.on('stored', onStored);
  res.on('close', finish);

  function write(text: string): Promise<void> | undefined {
    if (done || res.writableEnded) return undefined;
    if (res.write(text)) return undefined;
    return new Promise((resolve) => {
      const go = () => {
        res.off('drain', go);
        res.off('close', go);
        resolve();
      };
      res.once('drain', go);
      res.once('close', go);
    });
  }

  /** Writes the lines not sent yet in pieces, so no string grows past a piece and a slow client holds back the reads. */
  async function sendLines(lines: LogLine[]): Promise<void> {
    let text = '';
    for (const line of lines) {
      if (done) return;
      if (line.seq <= lastSent) continue;
      text += `id: ${line.seq}\nevent: log\ndata: ${JSON.stringify(logLineView(line))}\n\n`;
      lastSent = line.seq;
      if (text.length >= WRITE_PIECE_BYTES) {
        await write(text);
        text = '';
      }
    }
    if (text) await write(text);
  }

  /** Everything after lastSent, one bounded read at a time, each written out before the next. */
  async function replayFromStore(): Promise<void> {
    for (;;) {
      const page = await store.readLog(taskId, lastSent, REPLAY_PAGE);
      if (done || page.length === 0) return;
      await sendLines(page);
    }
  }

  async function step(): Promise<boolean> {
    if (rereadStore) {
      rereadStore = false;
      pending = [];
      pendingBytes = 0;
      await replayFromStore();
    } else if (pending.length) {
      const batch = pending;
      pending = [];
      pendingBytes = 0;
      const first = batch.find((l) => l.seq > lastSent);
      if (first && first.seq > lastSent + 1) await replayFromStore();
      await sendLines(batch);
    } else if (stateDirty) {
      stateDirty = false;
      const current = await store.getTask(taskId);
      if (done) return false;
      if (!current) {
        finish();
        return false;
      }
      const final = FINAL_TASK_STATES.includes(current.state);
      if (final) await replayFromStore();
      await write(`event: state\ndata: ${JSON.stringify(taskView(current))}\n\n`);
      if (final) {
        await write('event: end\ndata: {}\n\n');
        finish();
        return false;
      }
    } else {
      return false;
    }
    return !done;
  }

  function pump(): void {
    if (pumping || done) return;
    pumping = true;
    void (async () => {
      try {
        while (await step());
      } catch (err) {
        logger.error({ err, task: taskId }, 'api: log stream failed');
        finish();
      } finally {
        pumping = false;
      }
      // Work queued while the last step was finishing.
      if (!done && (rereadStore || pending.length || stateDirty)) pump();
    })();
  }

  pump();
}

/** Where to resume: Last-Event-ID (a reconnecting EventSource) wins over ?after=. */
function startSeq(ctx: ApiContext, after: number): number {
  const header = ctx.req.headers['last-event-id'];
  const fromHeader = typeof header === 'string' && /^\d+$/.test(header.trim()) ? Number(header.trim()) : undefined;
  if (fromHeader !== undefined && Number.isSafeInteger(fromHeader)) return fromHeader;
  return after;
}

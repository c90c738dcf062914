import { TentacleMethods, type ScriptListWire, type ScriptStatusWire, type ScriptSummaryWire } from '../../api/tentacle-rpc.js';
import type { RpcClient } from '../../comms/index.js';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../logging.js';
import { FINAL_STATES, type LogLine, type Store } from '../store/types.js';
import { streamOf } from './run-script.js';

/** How long one status call may wait on the tentacle for news. */
const STATUS_WAIT_MS = 10_000;

export interface LeftoverOptions {
  store: Store;
  logger: Logger;
  /** Whether this node is running that part of a task right now (then it is no leftover). */
  isRunning(taskId: string, machineId: string): boolean;
  /** Lines stored: tell followers. */
  logged(taskId: string, lines: LogLine[]): void;
}

/**
 * Collects what a Tentacle kept of scripts whose task already ended without them: the
 * server failed the task after losing contact, and the Tentacle came back later. Each
 * script's remaining output and its fate (exit code, or orphaned when the Tentacle had
 * died with it) go into that task's log, then the Tentacle may forget it. A script still
 * running is followed until it ends, over this connection (if it drops, the next one
 * starts again from the stored cursor). Tickets the store does not know belong to another
 * server and are not touched.
 */
export async function collectLeftoverScripts(client: RpcClient, options: LeftoverOptions): Promise<number> {
  const { store, logger } = options;
  let listed: ScriptListWire;
  try {
    listed = (await client.call(TentacleMethods.listScripts, {}, { deadlineMs: 30_000 })) as ScriptListWire;
  } catch (err) {
    logger.debug({ err: errorMessage(err), thumbprint: client.peer.thumbprint }, 'task: listing leftover scripts failed (older Tentacle?)');
    return 0;
  }
  let collected = 0;
  for (const script of listed.scripts ?? []) {
    const tm = await store.getTaskMachineByTicket(script.ticket);
    if (!tm || !(FINAL_STATES as readonly string[]).includes(tm.state) || options.isRunning(tm.taskId, tm.machineId)) continue;
    try {
      let cursor = tm.logCursor;
      let late = 0;
      let ended: ScriptSummaryWire;
      for (;;) {
        const status = (await client.call(
          TentacleMethods.scriptStatus,
          { ticket: script.ticket, afterSeq: cursor, maxLines: 1000, waitMs: STATUS_WAIT_MS },
          { deadlineMs: STATUS_WAIT_MS + 30_000 },
        )) as ScriptStatusWire;
        const stored = await store.appendMachineLog(
          tm.taskId,
          tm.machineId,
          status.lines.map((l) => ({ tentacleSeq: l.seq, at: l.at, stream: streamOf(l.stream), text: l.text })),
        );
        if (stored.length) options.logged(tm.taskId, stored);
        late += stored.length;
        cursor = Math.max(cursor, ...status.lines.map((l) => l.seq));
        if (status.state !== 'Running' && !status.more) {
          ended = status;
          break;
        }
      }
      // Said only when the task does not say it already (a completion that merely failed to
      // reach the Tentacle leaves the same outcome and no new lines).
      const alreadyKnown = late === 0 && tm.exitCode === (ended.exitCode ?? null) && (ended.state !== 'Orphaned' || /orphan|process is gone/i.test(tm.error ?? ''));
      if (!alreadyKnown) {
        const text = `The Tentacle still held this script after the task ended${late ? ` (${late} more line${late === 1 ? '' : 's'} above)` : ''}: it ${fate(ended)}.`;
        options.logged(tm.taskId, [await store.appendTaskLog(tm.taskId, tm.machineId, 'info', text)]);
      }
      await client.call(TentacleMethods.completeScript, { ticket: script.ticket }, { deadlineMs: 30_000 });
      collected++;
      logger.info({ task: tm.taskId, machine: tm.machineName, state: ended.state }, 'task: collected a script the Tentacle kept after its task ended');
    } catch (err) {
      logger.warn({ err: errorMessage(err), task: tm.taskId, machine: tm.machineName }, 'task: collecting a leftover script failed; tried again on its next connection');
    }
  }
  return collected;
}

function fate(script: ScriptSummaryWire): string {
  if (script.state === 'Orphaned') return `reported it orphaned: ${script.error ?? 'its process was gone when the Tentacle restarted'}`;
  if (script.cancelled) return 'was cancelled';
  if (script.timedOut) return 'was stopped by its timeout';
  return script.exitCode === undefined || script.exitCode === null ? 'finished without an exit code' : `finished with exit code ${script.exitCode}`;
}

import type { ScriptLogStream, ScriptStatus, ScriptSyntax } from '../../../api/tentacle/index.js';
import { ReefError } from '../../../errors.js';
import { formatDuration } from '../../../format.js';
import type { LogStream } from '../../store/types.js';
import { callTentacle } from '../../tentacle-client.js';
import { callRetrying, type MachineOutcome, type MachineRun } from '../machine-run.js';
import type { TaskKind } from '../task-kind.js';
import { ScriptDeadline } from './script-deadline.js';

type RunScriptSpec = {
  script: { syntax: ScriptSyntax; body: string };
  timeoutSeconds?: number;
  lostContactLimitSeconds?: number;
};

export const runScriptKind: TaskKind<'run-script', RunScriptSpec> = {
  specOf: async (request) => ({
    script: request.script,
    timeoutSeconds: request.timeoutSeconds,
    ...(request.lostContactLimitSeconds !== undefined ? { lostContactLimitSeconds: request.lostContactLimitSeconds } : {}),
  }),
  perform: runScript,
  release: completeScript,
};

/** How long one status call may wait on the tentacle for new output. */
const STATUS_WAIT_MS = 10_000;
/** Lines asked for per status call; the contract refuses an answer with more. */
const STATUS_LINES = 1000;

/**
 * Runs a script on one machine and copies its log into the task, line by line.
 *
 * The script is started under the ticket the server chose, so a start repeated after a
 * dropped link or a server restart finds the running script instead of starting it again;
 * log lines are fetched after the last tentacle sequence number stored, so none is lost
 * or stored twice. The status loop is not tied to the task's cancel signal: cancelling
 * asks the tentacle to stop the script, and the loop then collects its final lines.
 *
 * When contact is lost the script goes on and the Tentacle keeps its output, so the run
 * waits up to the lost-contact limit (or the script's own timeout), shows since when it
 * waits, and resumes collecting after the last stored line once the Tentacle is back.
 */
async function runScript(run: MachineRun, spec: RunScriptSpec): Promise<MachineOutcome> {
  const ticket = run.taskMachine.ticket;
  await callRetrying(run, 'scripts.start', {
    ticket,
    syntax: spec.script.syntax,
    body: spec.script.body,
    timeoutMs: spec.timeoutSeconds ? spec.timeoutSeconds * 1000 : undefined,
  });

  const deadline = new ScriptDeadline(run, spec.timeoutSeconds);
  const lostContactMs = spec.lostContactLimitSeconds ? spec.lostContactLimitSeconds * 1000 : run.lostContactLimitMs;
  // Kept in the store: after a server restart the limit still counts from the first loss.
  let lostSince = run.taskMachine.lostContactAt ? Date.parse(run.taskMachine.lostContactAt) : undefined;
  // One write after the other: a short outage's "back" must not overtake its "lost".
  let recorded = Promise.resolve();
  const record = (since: number | null) => {
    recorded = recorded.then(() => run.lostContact(since)).catch(() => {});
  };
  const onLost = (since: number, err: ReefError) => {
    lostSince = since;
    record(since);
    run
      .log(
        'info',
        `Lost contact with the Tentacle at ${new Date(since).toISOString()} (${err.message.replace(/\.$/, '')}). The script goes on there; ` +
          `waiting up to ${formatDuration(lostContactMs)} (the lost-contact limit) for it to come back.`,
      )
      .catch(() => {});
  };
  const onBack = (since: number) => {
    lostSince = undefined;
    record(null);
    run
      .log('info', `Contact with the Tentacle is back after ${formatDuration(Date.now() - since)}; collecting from line ${run.logCursor() + 1}.`)
      .catch(() => {});
  };
  let cancelSent = false;
  const sendCancel = () => {
    if (cancelSent) return;
    cancelSent = true;
    callRetrying(run, 'scripts.cancel', { ticket }, { signal: run.stopped }).catch((err: Error) =>
      run.logger.warn({ machine: run.machine.name, err: err.message }, 'task: cancelling the script failed'),
    );
  };
  const onCancel = () => {
    sendCancel();
    deadline.cancelled();
  };
  if (run.signal.aborted) onCancel();
  else run.signal.addEventListener('abort', onCancel, { once: true });
  try {
    for (;;) {
      let status: ScriptStatus;
      try {
        status = await callRetrying(
          run,
          'scripts.status',
          { ticket, afterSeq: run.logCursor(), maxLines: STATUS_LINES, waitMs: STATUS_WAIT_MS },
          { signal: deadline.signal, deadlineMs: STATUS_WAIT_MS + 30_000, lostContactMs, lostSince, onLost, onBack },
        );
      } catch (err) {
        const verdict = deadline.verdict;
        if (!verdict) throw err;
        // Ask once more, in case an honest but slow Tentacle can still stop it.
        sendCancel();
        await run.log('info', verdict.note);
        return verdict.outcome;
      }
      if (status.lines.length) {
        await run.appendTentacleLines(
          status.lines.map((line) => ({ tentacleSeq: line.seq, at: line.at, stream: streamOf(line.stream), text: line.text })),
        );
      }
      if (status.state === 'Running' || status.more) continue;
      return outcomeOf(status);
    }
  } finally {
    run.signal.removeEventListener('abort', onCancel);
    deadline.dispose();
    // Stored before the outcome: a run failed for lost contact keeps when contact was lost.
    await recorded;
  }
}

/**
 * The tentacle may forget a ticket once told the server has everything. Best effort;
 * also sent when cancelled before the start was confirmed: the start may still arrive,
 * and the retired ticket then refuses it.
 */
async function completeScript(run: MachineRun): Promise<void> {
  await callTentacle(run.tentacle, 'scripts.complete', { ticket: run.taskMachine.ticket }, { signal: run.stopped, deadlineMs: 30_000 }).catch(() => {});
}

/** The Tentacle's own notes ("system") are info lines of the task log. */
export function streamOf(stream: ScriptLogStream): LogStream {
  return stream === 'system' ? 'info' : stream;
}

/** What a finished script's status means for the machine's part of the task. */
export function outcomeOf(status: ScriptStatus): MachineOutcome {
  const exitCode = status.exitCode ?? null;
  if (status.state === 'Orphaned') {
    return { state: 'Failed', exitCode, error: status.error ?? 'The Tentacle restarted while the script was running and its process is gone.' };
  }
  if (status.error) return { state: 'Failed', exitCode, error: status.error };
  if (status.timedOut) return { state: 'TimedOut', exitCode, error: 'The script ran longer than its timeout and was stopped.' };
  if (status.cancelled) return { state: 'Cancelled', exitCode, error: null };
  if (exitCode === 0) return { state: 'Success', exitCode: 0 };
  if (exitCode === null) throw new ReefError('REEF_PROTOCOL_ERROR', 'The Tentacle reported a finished script without an exit code.');
  return { state: 'Failed', exitCode, error: `The script exited with code ${exitCode}.` };
}

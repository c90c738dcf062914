import { formatDuration } from '../../../format.js';
import type { MachineOutcome, MachineRun } from '../machine-run.js';

/**
 * The server's own bound on a running script, whatever its Tentacle does. A Tentacle
 * enforces a script's timeout and a cancel itself, but a buggy or hostile one could answer
 * "Running" for ever and keep the task open. So the server gives the Tentacle `graceMs`
 * past the timeout (counted from when the part started, which the store keeps across a
 * server restart), or past the cancel, to report the outcome; then it ends the part itself.
 *
 * `signal` aborts when the server stops waiting (or when this node stops working on the
 * part), so a status call in flight ends at once; `verdict` then says what the server
 * decided, or is undefined when the abort came from `run.stopped`.
 */
export class ScriptDeadline {
  private readonly controller = new AbortController();
  private readonly timers: NodeJS.Timeout[] = [];
  private decided: { outcome: MachineOutcome; note: string } | undefined;
  private readonly onStopped = () => this.controller.abort(this.run.stopped.reason);

  constructor(
    private readonly run: MachineRun,
    timeoutSeconds: number | undefined,
  ) {
    if (run.stopped.aborted) this.controller.abort(run.stopped.reason);
    else run.stopped.addEventListener('abort', this.onStopped, { once: true });
    if (timeoutSeconds) {
      const startedAt = run.taskMachine.startedAt ? Date.parse(run.taskMachine.startedAt) : Date.now();
      const endsAt = startedAt + timeoutSeconds * 1000 + run.graceMs;
      this.after(endsAt - Date.now(), {
        outcome: {
          state: 'TimedOut',
          exitCode: null,
          error:
            `The script ran longer than its timeout (${formatDuration(timeoutSeconds * 1000)}) and its Tentacle did not report it stopped ` +
            `within ${formatDuration(run.graceMs)} after; the server ended this part. The script may still be running on "${run.machine.name}".`,
        },
        note: `The Tentacle did not stop the script within ${formatDuration(run.graceMs)} of its timeout.`,
      });
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** What the server decided once it stopped waiting; undefined while it still waits. */
  get verdict(): { outcome: MachineOutcome; note: string } | undefined {
    return this.decided;
  }

  /** The task was cancelled: the Tentacle has `graceMs` to confirm it. */
  cancelled(): void {
    this.after(this.run.graceMs, {
      outcome: { state: 'Cancelled', exitCode: null, error: null },
      note:
        `The Tentacle did not confirm the cancel within ${formatDuration(this.run.graceMs)}; the server marks this part Cancelled. ` +
        `The script may still be running on "${this.run.machine.name}".`,
    });
  }

  dispose(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.run.stopped.removeEventListener('abort', this.onStopped);
  }

  private after(ms: number, verdict: { outcome: MachineOutcome; note: string }): void {
    const timer = setTimeout(() => {
      this.decided ??= verdict;
      this.controller.abort(new Error(verdict.note));
    }, Math.max(0, ms));
    this.timers.push(timer);
  }
}

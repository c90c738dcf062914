/**
 * Late reports: a machine run that failed for lost contact (its Tentacle stayed away past
 * the lost-contact limit) still gets its script's lines and real outcome when the Tentacle
 * comes back while it still holds the ticket (it keeps finished scripts for its retention
 * period). The lines are stored after the ones collected before the cut, behind one line
 * saying they arrived late; the outcome is recorded as the run's late report, and the run
 * stays Failed: a task's result, once given, does not change.
 *
 * Triggers: a polling Tentacle connecting to this node, and a sweep every `sweepMs` (for
 * listening Tentacles, and for polling ones connected before this node started). Every
 * step is idempotent (log lines are deduplicated by the Tentacle's sequence numbers, the
 * report is recorded once), so two nodes collecting at once store each line once.
 */
import type { CommsServer, RpcClient } from '../../comms/index.js';
import { errorMessage, isReefError } from '../../errors.js';
import { formatDuration } from '../../format.js';
import type { Logger } from '../../logging.js';
import type { LogLine, Machine, Store, TaskMachine } from '../store/types.js';
import { callTentacle, machineAddress, routedEndpoint, type TentacleEndpoint } from '../tentacle-client.js';
import { outcomeOf, streamOf } from './kinds/run-script.js';

export interface LateReportOptions {
  store: Store;
  comms: CommsServer;
  logger: Logger;
  sweepMs: number;
  logQuotaBytes: number;
  /** New durable lines of a task (for followers). */
  logged(taskId: string, lines: LogLine[]): void;
  /** A task's machine run changed (its late report). */
  changed(taskId: string): void;
}

/** Codes that mean the Tentacle no longer holds the ticket: nothing more will come. */
const GONE_CODES: ReadonlySet<string> = new Set(['REEF_TICKET_EXPIRED', 'REEF_TICKET_COMPLETED', 'REEF_NOT_FOUND']);

/** How long the sweep waits for a Tentacle that is not connected (or not answering a dial). */
const SWEEP_PICKUP_MS = 2000;
const STATUS_WAIT_MS = 10_000;
const STATUS_LINES = 1000;

export class LateReports {
  private readonly busy = new Set<string>();
  private readonly active = new Set<Promise<void>>();
  private readonly stop = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private readonly onConnected = (client: RpcClient) => {
    this.track(this.forThumbprint(client.peer.thumbprint));
  };

  constructor(private readonly options: LateReportOptions) {}

  start(): void {
    this.options.comms.on('connected', this.onConnected);
    this.schedule();
  }

  async close(): Promise<void> {
    this.options.comms.off('connected', this.onConnected);
    clearTimeout(this.timer);
    this.stop.abort(new Error('The server is stopping.'));
    await Promise.all([...this.active]);
  }

  /** Tries every run awaiting a late report once (the periodic sweep; tests call it directly). */
  async sweep(): Promise<void> {
    const { store } = this.options;
    const machines = new Map<string, Machine | null>();
    for (const tm of await store.listLostContact()) {
      if (this.stop.signal.aborted) return;
      if (tm.state !== 'Failed') continue; // still running: its own machine run collects it
      if (!machines.has(tm.machineId)) machines.set(tm.machineId, await store.getMachine(tm.machineId));
      const machine = machines.get(tm.machineId);
      if (machine) await this.collect(tm, machine, SWEEP_PICKUP_MS);
    }
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.track(this.sweep().finally(() => this.stop.signal.aborted || this.schedule()));
    }, this.options.sweepMs);
    this.timer.unref();
  }

  private track(work: Promise<unknown>): void {
    const done: Promise<void> = work
      .then(() => undefined)
      .catch((err: unknown) => this.options.logger.warn({ err: errorMessage(err) }, 'late reports: collection failed; will retry'))
      .finally(() => this.active.delete(done));
    this.active.add(done);
  }

  private async forThumbprint(thumbprint: string): Promise<void> {
    const { store } = this.options;
    const machine = await store.getMachineByThumbprint(thumbprint);
    if (!machine) return;
    for (const tm of await store.listLostContact(machine.id)) {
      if (tm.state === 'Failed') await this.collect(tm, machine, SWEEP_PICKUP_MS);
    }
  }

  /**
   * Collects one run's late lines and outcome, following the script while it still runs.
   * Leaves the run awaiting when the Tentacle cannot be reached (a later sweep or connect
   * tries again).
   */
  private async collect(tm: TaskMachine, machine: Machine, pickupTimeoutMs: number): Promise<void> {
    if (this.busy.has(tm.ticket)) return;
    this.busy.add(tm.ticket);
    try {
      const endpoint = routedEndpoint(this.options.comms, machineAddress(machine));
      await this.follow(tm, endpoint, pickupTimeoutMs);
    } catch (err) {
      if (!isReefError(err) || !GONE_CODES.has(err.code)) {
        this.options.logger.debug({ task: tm.taskId, machine: tm.machineName, err: errorMessage(err) }, 'late reports: Tentacle not reachable yet');
        return;
      }
      await this.record(tm, { state: null, exitCode: null, error: `The Tentacle came back but no longer holds the script: ${err.message}` });
    } finally {
      this.busy.delete(tm.ticket);
    }
  }

  private async follow(tm: TaskMachine, endpoint: TentacleEndpoint, pickupTimeoutMs: number): Promise<void> {
    const { store, logQuotaBytes } = this.options;
    let cursor = tm.logCursor;
    let announced = tm.lostCursor !== null && cursor > tm.lostCursor; // an earlier attempt stored some already
    for (;;) {
      const status = await callTentacle(
        endpoint,
        'scripts.status',
        { ticket: tm.ticket, afterSeq: cursor, maxLines: STATUS_LINES, waitMs: STATUS_WAIT_MS },
        { signal: this.stop.signal, deadlineMs: STATUS_WAIT_MS + 30_000, pickupTimeoutMs },
      );
      if (status.lines.length) {
        if (!announced) {
          announced = true;
          const since = tm.lostContactAt ? ` (contact was lost at ${new Date(tm.lostContactAt).toISOString()}, ${formatDuration(Date.now() - Date.parse(tm.lostContactAt))} ago)` : '';
          await this.log(tm, `Late report: the Tentacle came back after this machine run had failed for lost contact${since}. The lines below arrived late.`);
        }
        const stored = await store.appendMachineLog(
          tm.taskId,
          tm.machineId,
          status.lines.map((line) => ({ tentacleSeq: line.seq, at: line.at, stream: streamOf(line.stream), text: line.text })),
          { quotaBytes: logQuotaBytes },
        );
        cursor = Math.max(cursor, ...status.lines.map((line) => line.seq));
        if (stored.length) this.options.logged(tm.taskId, stored);
      }
      if (status.state === 'Running' || status.more) continue;
      const outcome = outcomeOf(status);
      const said = outcome.state === 'Success' ? 'Success (exit code 0)' : `${outcome.state}${outcome.exitCode != null ? ` (exit code ${outcome.exitCode})` : ''}`;
      await this.log(tm, `Late report: the script really ended ${said}. This machine run stays Failed (it failed for lost contact); the late lines and outcome are kept for the record.`);
      await this.record(tm, { state: outcome.state, exitCode: outcome.exitCode ?? null, error: outcome.error ?? null });
      // The server now holds everything: the Tentacle may forget the ticket.
      await callTentacle(endpoint, 'scripts.complete', { ticket: tm.ticket }, { signal: this.stop.signal, deadlineMs: 30_000 }).catch(() => {});
      return;
    }
  }

  private async record(tm: TaskMachine, report: { state: TaskMachine['lateState']; exitCode: number | null; error: string | null }): Promise<void> {
    if (await this.options.store.recordLateReport(tm.taskId, tm.machineId, report)) {
      this.options.logger.info({ task: tm.taskId, machine: tm.machineName, ...report }, 'late report recorded');
      this.options.changed(tm.taskId);
    }
  }

  private async log(tm: TaskMachine, text: string): Promise<void> {
    const line = await this.options.store.appendTaskLog(tm.taskId, tm.machineId, 'info', text);
    this.options.logged(tm.taskId, [line]);
  }
}

import { EventEmitter } from 'node:events';
import type { CreateTaskRequest, NodeView, TaskTarget } from '../../api/contract.js';
import type { CommsServer } from '../../comms/index.js';
import { errorMessage, ReefError } from '../../errors.js';
import { formatBytes } from '../../format.js';
import type { Logger } from '../../logging.js';
import type { ClusterBus } from '../cluster/bus.js';
import type { NodeRecord, WorkKey } from '../store/coordination.js';
import { groupBy } from '../store/rows.js';
import type { FinalState, JsonObject, LogLine, LogStream, Machine, Store, TaskMachine, TaskWithMachines } from '../store/types.js';
import type { TaskEngineApi, TaskEvents, TentacleLinks } from './api.js';
import { taskKind } from './kinds/index.js';
import { isFinal, overall } from './outcome.js';
import { LateReports } from './late-reports.js';
import type { BlobSource, MachineOutcome, MachineRun } from './machine-run.js';
import { WorkScheduler, type ClusterTiming, type LocalRun } from './scheduler.js';
import { resolveTarget } from './targets.js';
import { machineAddress, routedEndpoint } from '../tentacle-client.js';
import { NO_RELEASES, type TentacleRelease, type TentacleReleases } from '../tentacle-releases/index.js';

export interface TaskEngineOptions {
  store: Store;
  comms: CommsServer;
  blobs: BlobSource;
  /** The Tentacle executables the server distributes (upgrade-tentacle tasks); none when absent. */
  releases?: TentacleReleases;
  logger: Logger;
  /** This server node, as the other nodes on the store see it. */
  node: { name: string; info: JsonObject };
  /** Tells the other nodes; a LocalBus when there are none. */
  bus: ClusterBus;
  timing?: Partial<ClusterTiming>;
  /**
   * How long a Tentacle has to report a script stopped after its timeout or a cancel
   * before the server ends the part as TimedOut or Cancelled itself. Default 30 s.
   */
  stopGraceMs?: number;
  /**
   * Most bytes of Tentacle output stored per machine run (default DEFAULT_LOG_QUOTA_BYTES):
   * past it one line says the rest is dropped, the script is still followed to its outcome,
   * and a last line counts what was dropped. Kept in the store, so it holds across restarts.
   */
  logQuotaBytes?: number;
  /**
   * How long a running script's Tentacle may be out of contact before its machine run
   * fails (DEFAULT_LOST_CONTACT_LIMIT_MS); a task may set its own. The Tentacle keeps the
   * script's lines and outcome, so one back later still gives a late report (late-reports.ts).
   */
  lostContactLimitMs?: number;
  /** How often the store is checked for failed runs whose Tentacle may give a late report. Default 60 s. */
  lateReportSweepMs?: number;
}

export const DEFAULT_STOP_GRACE_MS = 30_000;
export const DEFAULT_LOST_CONTACT_LIMIT_MS = 30 * 60 * 1000;

/** The default log quota of a machine run: generous for real output, a bound for a flood. */
export const DEFAULT_LOG_QUOTA_BYTES = 256 * 1024 * 1024;

/**
 * Runs tasks: every machine of a task in parallel, each through its state machine
 * (Pending, Running, then Success, Failed, Cancelled or TimedOut), with its log made
 * durable line by line. A task belongs to no node: each machine's part is claimed by a
 * node that can reach its tentacle (see WorkScheduler), and whichever node finishes the
 * last machine finishes the task. So tasks survive a restart or a node's death: another
 * claim picks each part up where the store says it was, and scripts are found again by
 * ticket, so none starts twice.
 */
export class TaskEngine implements TaskEngineApi {
  readonly events = new EventEmitter<TaskEvents>();
  readonly scheduler: WorkScheduler;
  readonly lateReports: LateReports;
  private readonly active = new Set<Promise<void>>();
  private closing = false;

  constructor(private readonly options: TaskEngineOptions) {
    // Every SSE follower adds listeners; that is expected, not a leak.
    this.events.setMaxListeners(0);
    this.scheduler = new WorkScheduler({
      coordination: options.store.coordination,
      comms: options.comms,
      bus: options.bus,
      logger: options.logger,
      node: options.node,
      timing: options.timing,
      launch: (claimed) => this.launch(claimed),
    });
    this.lateReports = new LateReports({
      store: options.store,
      comms: options.comms,
      logger: options.logger,
      sweepMs: options.lateReportSweepMs ?? 60_000,
      logQuotaBytes: options.logQuotaBytes ?? DEFAULT_LOG_QUOTA_BYTES,
      logged: (taskId, lines) => this.logged(taskId, lines),
      changed: (taskId) => this.changed(taskId),
    });
    options.bus.subscribe((event) => {
      switch (event.kind) {
        case 'work':
          return this.scheduler.claimSoon();
        case 'link':
          this.scheduler.linkElsewhere();
          return this.scheduler.claimSoon();
        case 'cancel':
          this.scheduler.cancelLocal(event.taskId);
          return this.events.emit('changed', event.taskId);
        case 'changed':
          return this.events.emit('changed', event.taskId);
        case 'log':
          return this.events.emit('stored', event.taskId);
        case 'resync':
          this.scheduler.claimSoon();
          return this.events.emit('stored', null);
      }
    });
  }

  async nodes(): Promise<NodeView[]> {
    const records = await this.options.store.coordination.listNodes(this.scheduler.timing.staleAfterMs);
    return records.map((r) => nodeView(r, this.scheduler.nodeName));
  }

  async links(): Promise<TentacleLinks> {
    return groupBy(await this.options.store.coordination.listLinks(this.scheduler.timing.staleAfterMs), (l) => l.thumbprint);
  }

  async releases(): Promise<TentacleRelease[]> {
    return (this.options.releases ?? NO_RELEASES).list();
  }

  /** Joins the cluster (or the single node's store) and starts claiming work. */
  async start(): Promise<void> {
    await this.scheduler.start();
    this.lateReports.start();
  }

  async createTask(request: CreateTaskRequest, guard?: (machines: Machine[]) => void): Promise<TaskWithMachines> {
    const { store, comms } = this.options;
    if (this.closing) throw new ReefError('REEF_SHUTTING_DOWN', 'The server is shutting down; try again shortly.');
    const kind = taskKind(request.kind);
    const machines = kind.machinesOf ? await kind.machinesOf(request, { store, comms }) : await resolveTarget(store, comms, request.target as TaskTarget);
    guard?.(machines);
    const spec = await kind.specOf(request, { blobs: this.options.blobs, releases: this.options.releases ?? NO_RELEASES });
    const task = await store.createTask({ kind: request.kind, spec: { ...spec }, target: request.target, machineIds: machines.map((m) => m.id) });
    this.options.bus.publish({ kind: 'work' });
    this.scheduler.claimSoon();
    return task;
  }

  async cancelTask(taskId: string): Promise<TaskWithMachines | null> {
    const { store, bus } = this.options;
    const task = await store.getTask(taskId);
    if (!task || isFinal(task.state)) return task;
    await store.requestCancel(taskId);
    this.scheduler.cancelLocal(taskId);
    bus.publish({ kind: 'cancel', taskId });
    // Parts nobody runs yet (waiting for their tentacle) can be recorded as cancelled by anyone.
    this.scheduler.claimSoon();
    this.changed(taskId);
    return store.getTask(taskId);
  }

  /** Stops working without recording anything, releases this node's claims, leaves the cluster. */
  async close(): Promise<void> {
    this.closing = true;
    this.scheduler.stopAll();
    await this.lateReports.close();
    await Promise.all([...this.active]);
    await this.scheduler.leave().catch((err: Error) => this.options.logger.warn({ err: err.message }, 'cluster: leaving failed; leases will lapse'));
  }

  /** Starts claimed work: one read per task, then each machine's run in the background. */
  private async launch(claimed: WorkKey[]): Promise<void> {
    const { store, logger } = this.options;
    for (const [taskId, keys] of groupBy(claimed, (work) => work.taskId)) {
      const task = await store.getTask(taskId);
      if (!task) continue;
      if (task.state === 'Queued' && (await store.startTask(task.id))) this.changed(task.id);
      for (const key of keys) {
        const tm = task.machines.find((m) => m.machineId === key.machineId);
        if (!tm || isFinal(tm.state)) continue;
        const machine = await store.getMachine(tm.machineId);
        const run = this.scheduler.track(key, machine?.commsStyle === 'polling' ? machine.thumbprint : null);
        if (!run) continue;
        if (task.cancelRequestedAt) run.cancel.abort();
        const done: Promise<void> = this.executeMachine(task, tm, machine, run)
          .then((outcome) => (outcome ? this.finishTaskIfComplete(task.id) : undefined))
          .catch((err) => logger.error({ err, task: task.id, machine: tm.machineName }, 'task: engine failure'))
          .finally(() => {
            this.active.delete(done);
            return this.scheduler.untrack(run);
          });
        this.active.add(done);
      }
    }
  }

  /** Runs one machine's part; resolves with its outcome, or null when stopped before one. */
  private async executeMachine(task: TaskWithMachines, tm: TaskMachine, machine: Machine | null, local: LocalRun): Promise<MachineOutcome | null> {
    const { store, comms, blobs, logger } = this.options;
    const cancelled = local.cancel.signal;
    const stopped = local.stop.signal;
    const kind = taskKind(task.kind);
    const partStarted = tm.startedAt ? Date.parse(tm.startedAt) : Date.now();
    let outcome: MachineOutcome;
    /** Set when the tentacle may let go of what it kept for this part, once the outcome is stored. */
    let releasable: MachineRun | undefined;
    if (!machine) {
      outcome = { state: 'Failed', error: `Machine "${tm.machineName}" was deleted before it could run this task.` };
    } else if (cancelled.aborted && tm.state === 'Pending') {
      outcome = { state: 'Cancelled' };
    } else {
      if (tm.state === 'Pending' && (await store.startTaskMachine(task.id, tm.machineId))) this.changed(task.id);
      let cursor = tm.logCursor;
      const run: MachineRun = {
        task,
        taskMachine: tm,
        machine,
        tentacle: routedEndpoint(comms, machineAddress(machine)),
        store,
        comms,
        blobs,
        releases: this.options.releases ?? NO_RELEASES,
        logger,
        signal: AbortSignal.any([cancelled, stopped]),
        stopped,
        graceMs: this.options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS,
        lostContactLimitMs: this.options.lostContactLimitMs ?? DEFAULT_LOST_CONTACT_LIMIT_MS,
        lostContact: async (since) => {
          if (await store.setLostContact(task.id, tm.machineId, since === null ? null : new Date(since))) this.changed(task.id);
        },
        log: (stream, text) => this.log(task.id, tm.machineId, stream, text),
        appendTentacleLines: async (lines) => {
          const stored = await store.appendMachineLog(task.id, tm.machineId, lines, { quotaBytes: this.options.logQuotaBytes ?? DEFAULT_LOG_QUOTA_BYTES });
          for (const line of lines) cursor = Math.max(cursor, line.tentacleSeq);
          if (stored.length) this.logged(task.id, stored);
        },
        logCursor: () => cursor,
      };
      try {
        outcome = await kind.perform(run, task.spec);
        releasable = run;
      } catch (err) {
        if (stopped.aborted) return null; // not recorded: whoever claims it next resumes it
        outcome = cancelled.aborted ? { state: 'Cancelled' } : { state: 'Failed', error: errorMessage(err) };
        if (cancelled.aborted) releasable = run;
      }
      if (stopped.aborted) return null;
      await this.reportDroppedLog(task.id, tm);
    }
    if (outcome.error) await this.log(task.id, tm.machineId, 'error', outcome.error);
    else if (outcome.state === 'Cancelled') await this.log(task.id, tm.machineId, 'info', 'Cancelled.');
    await store.finishTaskMachine(task.id, tm.machineId, { state: outcome.state, exitCode: outcome.exitCode ?? null, error: outcome.error ?? null });
    logger.info({ task: task.id, machine: tm.machineName, state: outcome.state, exitCode: outcome.exitCode, error: outcome.error }, 'task: machine finished');
    this.changed(task.id);
    this.events.emit('finished', { of: 'machine', kind: task.kind, state: outcome.state, seconds: secondsSince(partStarted) });
    // Only once the store holds the whole log and the outcome may the tentacle forget the ticket.
    if (releasable) void kind.release?.(releasable);
    return outcome;
  }

  /** Whoever finishes a task's last machine finishes the task (a repeat is a no-op). */
  private async finishTaskIfComplete(taskId: string): Promise<void> {
    const { store } = this.options;
    if ((await store.coordination.unfinishedMachines(taskId)) > 0) return;
    const task = await store.getTask(taskId);
    if (!task || isFinal(task.state)) return;
    const { state, error } = overall(
      task.machines.map((m) => ({ state: m.state as FinalState })),
      task.cancelRequestedAt !== null,
    );
    if (!(await store.finishTask(taskId, { state, error }))) return;
    this.changed(taskId);
    this.events.emit('finished', { of: 'task', kind: task.kind, state, seconds: secondsSince(Date.parse(task.createdAt)) });
  }

  /** Once a machine's part is over: how much of its output the log quota left out, if any. */
  private async reportDroppedLog(taskId: string, tm: TaskMachine): Promise<void> {
    const usage = await this.options.store.getTaskMachineByTicket(tm.ticket);
    if (!usage?.droppedLogLines) return;
    await this.log(taskId, tm.machineId, 'info', `Dropped by the log quota (not stored): ${usage.droppedLogLines} lines, ${formatBytes(usage.droppedLogBytes)} of output.`);
  }

  private async log(taskId: string, machineId: string | null, stream: LogStream, text: string): Promise<void> {
    const line = await this.options.store.appendTaskLog(taskId, machineId, stream, text);
    this.logged(taskId, [line]);
  }

  private logged(taskId: string, lines: LogLine[]): void {
    this.events.emit('log', taskId, lines);
    this.options.bus.publish({ kind: 'log', taskId });
  }

  private changed(taskId: string): void {
    this.events.emit('changed', taskId);
    this.options.bus.publish({ kind: 'changed', taskId });
  }
}

/** Seconds from a time in milliseconds (a stored timestamp, parsed) to now; never negative, whatever the clocks. */
function secondsSince(ms: number): number {
  return Number.isFinite(ms) ? Math.max(0, Date.now() - ms) / 1000 : 0;
}

/** A node as the API shows it; `self` names the node answering. */
export function nodeView(r: NodeRecord, self: string): NodeView {
  const text = (v: unknown) => (typeof v === 'string' ? v : null);
  const port = (v: unknown) => (typeof v === 'number' ? v : null);
  return {
    name: r.name,
    thisNode: r.name === self,
    alive: r.alive,
    stopped: r.stoppedAt !== null,
    startedAt: r.startedAt,
    heartbeatAt: r.heartbeatAt,
    version: text(r.info.version),
    host: text(r.info.host),
    httpsPort: port(r.info.httpsPort),
    commsPort: port(r.info.commsPort),
    connectedTentacles: r.connectedTentacles,
    runningWork: r.ownedWork,
  };
}

import { EventEmitter } from 'node:events';
import type { CreateTaskRequest } from '../../api/contract.js';
import type { CommsServer } from '../../comms/index.js';
import { errorMessage, ReefError } from '../../errors.js';
import type { Logger } from '../../logging.js';
import { FINAL_STATES, type FinalState, type LogStream, type Store, type TaskMachine, type TaskWithMachines } from '../store/types.js';
import type { TaskEngineApi, TaskEvents } from './api.js';
import { healthCheck } from './health-check.js';
import type { BlobSource, MachineOutcome, MachineRun } from './machine-run.js';
import { pushFile, type PushFileSpec } from './push-file.js';
import { completeScript, runScript, type RunScriptSpec } from './run-script.js';
import { resolveTarget } from './targets.js';

export interface TaskEngineOptions {
  store: Store;
  comms: CommsServer;
  blobs: BlobSource;
  logger: Logger;
}

/**
 * Runs tasks: every machine of a task in parallel, each through its state machine
 * (Pending, Running, then Success, Failed, Cancelled or TimedOut), with its log made
 * durable line by line. Tasks survive a server restart: `recover()` picks up every
 * unfinished task where the store says it was, and scripts are found again by ticket.
 */
export class TaskEngine implements TaskEngineApi {
  readonly events = new EventEmitter<TaskEvents>();
  private readonly runs = new Map<string, { cancel: AbortController; done: Promise<void> }>();
  private readonly closing = new AbortController();

  constructor(private readonly options: TaskEngineOptions) {
    // Every SSE follower adds listeners; that is expected, not a leak.
    this.events.setMaxListeners(0);
  }

  async createTask(request: CreateTaskRequest): Promise<TaskWithMachines> {
    const { store, comms } = this.options;
    if (this.closing.signal.aborted) throw new ReefError('REEF_SHUTTING_DOWN', 'The server is shutting down; try again shortly.');
    const machines = await resolveTarget(store, comms, request.target);
    let spec: Record<string, unknown>;
    if (request.kind === 'run-script') spec = { script: request.script, timeoutSeconds: request.timeoutSeconds };
    else if (request.kind === 'push-file') {
      if (!(await this.options.blobs.stat(request.file.sha256))) {
        throw new ReefError('REEF_NOT_FOUND', `No uploaded file has SHA-256 ${request.file.sha256}; upload it first (POST /api/files).`);
      }
      spec = { file: request.file };
    } else spec = {};
    const task = await store.createTask({ kind: request.kind, spec, target: request.target, machineIds: machines.map((m) => m.id) });
    this.schedule(task);
    return task;
  }

  async cancelTask(taskId: string): Promise<TaskWithMachines | null> {
    const { store } = this.options;
    const task = await store.getTask(taskId);
    if (!task || isFinal(task.state)) return task;
    await store.requestCancel(taskId);
    const run = this.runs.get(taskId);
    if (run) run.cancel.abort();
    else this.schedule((await store.getTask(taskId))!);
    this.changed(taskId);
    return store.getTask(taskId);
  }

  /** Resumes every task a previous server process left unfinished. */
  async recover(): Promise<number> {
    const unfinished = await this.options.store.listUnfinishedTasks();
    for (const task of unfinished) this.schedule(task);
    return unfinished.length;
  }

  /** Stops working without changing any task's state, so the next start resumes them. */
  async close(): Promise<void> {
    this.closing.abort();
    await Promise.all([...this.runs.values()].map((run) => run.done));
  }

  private schedule(task: TaskWithMachines): void {
    if (this.runs.has(task.id)) return;
    const cancel = new AbortController();
    if (task.cancelRequestedAt) cancel.abort();
    const done = this.execute(task, cancel.signal)
      .catch((err) => this.options.logger.error({ err, task: task.id }, 'task: engine failure'))
      .finally(() => this.runs.delete(task.id));
    this.runs.set(task.id, { cancel, done });
  }

  private async execute(task: TaskWithMachines, cancelled: AbortSignal): Promise<void> {
    const { store } = this.options;
    if (task.state === 'Queued') {
      await store.startTask(task.id);
      this.changed(task.id);
    }
    const outcomes = await Promise.all(
      task.machines.map((tm) => (isFinal(tm.state) ? Promise.resolve({ state: tm.state as FinalState }) : this.executeMachine(task, tm, cancelled))),
    );
    if (this.closing.signal.aborted) return;
    const { state, error } = overall(outcomes, cancelled.aborted);
    await store.finishTask(task.id, { state, error });
    this.changed(task.id);
  }

  private async executeMachine(task: TaskWithMachines, tm: TaskMachine, cancelled: AbortSignal): Promise<MachineOutcome> {
    const { store, comms, blobs, logger } = this.options;
    const machine = await store.getMachine(tm.machineId);
    let outcome: MachineOutcome;
    /** Set when a script finished on the tentacle, which may then forget its ticket. */
    let finishedScript: MachineRun | undefined;
    if (!machine) {
      outcome = { state: 'Failed', error: `Machine "${tm.machineName}" was deleted before it could run this task.` };
    } else if (cancelled.aborted && tm.state === 'Pending') {
      outcome = { state: 'Cancelled' };
    } else {
      if (tm.state === 'Pending') {
        await store.startTaskMachine(task.id, tm.machineId);
        this.changed(task.id);
      }
      let cursor = tm.logCursor;
      const run: MachineRun = {
        task,
        taskMachine: tm,
        machine,
        target: { thumbprint: machine.thumbprint, name: machine.name, listening: machine.commsStyle === 'listening' ? (machine.endpoint ?? undefined) : undefined },
        store,
        comms,
        blobs,
        logger,
        signal: AbortSignal.any([cancelled, this.closing.signal]),
        log: (stream, text) => this.log(task.id, tm.machineId, stream, text),
        appendTentacleLines: async (lines) => {
          const stored = await store.appendMachineLog(task.id, tm.machineId, lines);
          cursor = Math.max(cursor, ...lines.map((l) => l.tentacleSeq));
          if (stored.length) this.events.emit('log', task.id, stored);
        },
        logCursor: () => cursor,
      };
      try {
        outcome = await this.perform(run, task, cancelled);
        if (task.kind === 'run-script') finishedScript = run;
      } catch (err) {
        if (this.closing.signal.aborted) return { state: 'Failed' }; // not recorded: the next start resumes it
        outcome = cancelled.aborted ? { state: 'Cancelled' } : { state: 'Failed', error: errorMessage(err) };
      }
      if (this.closing.signal.aborted) return outcome;
    }
    if (outcome.error) await this.log(task.id, tm.machineId, 'error', outcome.error);
    else if (outcome.state === 'Cancelled') await this.log(task.id, tm.machineId, 'info', 'Cancelled.');
    await store.finishTaskMachine(task.id, tm.machineId, { state: outcome.state, exitCode: outcome.exitCode ?? null, error: outcome.error ?? null });
    this.changed(task.id);
    // Only once the store holds the whole log and the outcome may the tentacle forget the ticket.
    if (finishedScript) void completeScript(finishedScript, this.closing.signal);
    return outcome;
  }

  private async perform(run: MachineRun, task: TaskWithMachines, cancelled: AbortSignal): Promise<MachineOutcome> {
    switch (task.kind) {
      case 'run-script': {
        try {
          return await runScript(run, task.spec as unknown as RunScriptSpec, this.closing.signal);
        } catch (err) {
          // Cancelled before the start was confirmed: the start may still arrive, so
          // retire the ticket on the tentacle (a later start is then refused).
          if (cancelled.aborted) void completeScript(run, this.closing.signal);
          throw err;
        }
      }
      case 'push-file':
        return pushFile(run, task.spec as unknown as PushFileSpec);
      case 'health-check':
        return healthCheck(run);
    }
  }

  private async log(taskId: string, machineId: string | null, stream: LogStream, text: string): Promise<void> {
    const line = await this.options.store.appendTaskLog(taskId, machineId, stream, text);
    this.events.emit('log', taskId, [line]);
  }

  private changed(taskId: string): void {
    this.events.emit('changed', taskId);
  }
}

function isFinal(state: string): state is FinalState {
  return (FINAL_STATES as readonly string[]).includes(state);
}

function overall(outcomes: MachineOutcome[], cancelled: boolean): { state: FinalState; error: string | null } {
  const count = (state: FinalState) => outcomes.filter((o) => o.state === state).length;
  if (count('Success') === outcomes.length) return { state: 'Success', error: null };
  if (cancelled && count('Cancelled') > 0) return { state: 'Cancelled', error: null };
  const failed = count('Failed');
  if (failed === 0 && count('TimedOut') > 0) return { state: 'TimedOut', error: `${count('TimedOut')} of ${outcomes.length} machines timed out.` };
  return { state: 'Failed', error: `${failed + count('TimedOut') + count('Cancelled')} of ${outcomes.length} machines did not succeed.` };
}

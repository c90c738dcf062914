/**
 * The soak's load: run-script tasks, one batch of machines each, kept going in a loop
 * through the REST API until the time is up, and every finished task's log checked.
 *
 * `parallel` loops share a queue of idle batches: a loop takes one, runs a task on it,
 * checks its log and puts it back at the end. So no machine ever has two soak tasks at
 * once (its lines could not be told apart otherwise), and every machine gets its turn.
 */
import type { ApiClient } from '../../src/api/client.js';
import { FINAL_TASK_STATES, type CreateTaskRequest, type LogLineView, type LogPage, type TaskView } from '../../src/api/contract.js';
import { errorMessage } from '../../src/errors.js';
import { checkTaskLog, expectedLines, numberedLinesScript } from './log-check.js';

export interface WorkloadOptions {
  api: ApiClient;
  machineNames: readonly string[];
  batchSize: number;
  parallel: number;
  linesPerScript: number;
  /** No task is created after this long. */
  durationMs: number;
  /** How long tasks still running at the end may take to finish before they count as stuck. */
  graceMs: number;
  /** How often a running task's state is read. */
  pollMs: number;
}

export interface TaskRecord {
  id: string;
  state: string;
  machines: number;
  /** Server-side, from creation to the final state (undefined when it never finished). */
  latencyMs?: number;
  /** Server-side, each machine's run from start to finish. */
  machineRunMs: number[];
  linesReceived: number;
  problems: string[];
}

export interface WorkloadResult {
  /** When the first task was created (epoch ms). */
  startedAt: number;
  /** When no more tasks were created: the end of the full load. */
  stoppedAt: number;
  /** When the last task was finished and checked. */
  finishedAt: number;
  tasks: TaskRecord[];
  /** Requests that failed outright (no task to record). */
  requestFailures: string[];
}

export async function runWorkload(options: WorkloadOptions): Promise<WorkloadResult> {
  const idle = batchesOf(options.machineNames, options.batchSize);
  const startedAt = Date.now();
  const createUntil = startedAt + options.durationMs;
  const giveUpAt = createUntil + options.graceMs;
  const tasks: TaskRecord[] = [];
  const requestFailures: string[] = [];

  const loop = async () => {
    while (Date.now() < createUntil) {
      const batch = idle.shift()!;
      try {
        tasks.push(await runTask(options, batch, giveUpAt));
      } catch (err) {
        requestFailures.push(errorMessage(err));
        await new Promise((r) => setTimeout(r, 1000)); // a server in trouble gets a breath, not a flood
      } finally {
        idle.push(batch);
      }
    }
  };
  await Promise.all(Array.from({ length: tasksInFlight(options.machineNames.length, options.batchSize, options.parallel) }, loop));
  return { startedAt, stoppedAt: createUntil, finishedAt: Date.now(), tasks, requestFailures };
}

/** As many tasks at once as asked, but never two on one batch of machines. */
export function tasksInFlight(machines: number, batchSize: number, parallel: number): number {
  return Math.min(parallel, Math.ceil(machines / batchSize));
}

function batchesOf(names: readonly string[], size: number): string[][] {
  const batches: string[][] = [];
  for (let i = 0; i < names.length; i += size) batches.push(names.slice(i, i + size));
  return batches;
}

async function runTask(options: WorkloadOptions, machines: string[], giveUpAt: number): Promise<TaskRecord> {
  const { api } = options;
  const request: CreateTaskRequest = {
    kind: 'run-script',
    target: { machines },
    script: { syntax: 'bash', body: numberedLinesScript(options.linesPerScript) },
  };
  const created = await api.json<TaskView>('POST', '/api/tasks', { body: request });
  const task = await finalState(api, created.id, options.pollMs, giveUpAt);
  if (!task) {
    return { id: created.id, state: 'stuck', machines: machines.length, machineRunMs: [], linesReceived: 0, problems: [`${created.id}: not finished by the end of the grace period`] };
  }
  const { linesReceived, problems } = checkTaskLog(task, await wholeLog(api, task.id), expectedLines(options.linesPerScript));
  return {
    id: task.id,
    state: task.state,
    machines: task.machines.length,
    latencyMs: elapsed(task.createdAt, task.finishedAt),
    machineRunMs: task.machines.map((m) => elapsed(m.startedAt, m.finishedAt)).filter((ms): ms is number => ms !== undefined),
    linesReceived,
    problems,
  };
}

/** The task once final, or undefined if it is still not final at `giveUpAt`. */
async function finalState(api: ApiClient, taskId: string, pollMs: number, giveUpAt: number): Promise<TaskView | undefined> {
  for (;;) {
    const task = await api.json<TaskView>('GET', `/api/tasks/${taskId}`);
    if (FINAL_TASK_STATES.includes(task.state)) return task;
    if (Date.now() >= giveUpAt) return undefined;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

async function wholeLog(api: ApiClient, taskId: string): Promise<LogLineView[]> {
  const lines: LogLineView[] = [];
  for (let after = 0; ; ) {
    const page = await api.json<LogPage>('GET', `/api/tasks/${taskId}/log?after=${after}&limit=10000`);
    if (page.items.length === 0) return lines;
    lines.push(...page.items);
    after = page.lastSeq;
  }
}

function elapsed(from: string | null, to: string | null): number | undefined {
  return from && to ? Date.parse(to) - Date.parse(from) : undefined;
}

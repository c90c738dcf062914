/**
 * The soak: one real `reef server run` process, a simulated fleet of polling Tentacles
 * (the benchmarks' fleet: the real agent, spread over worker processes), run-script tasks
 * in a loop for a while (workload.ts), then three checks: every task finished, every log
 * is exactly what its script printed, and the server's memory did not grow. `npm run
 * soak` (scripts/soak.ts) runs it at full size; the e2e test runs it small.
 * docs/reliability.md describes it.
 */
import { rm } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import type { BenchContext } from '../../bench/support/benchmark.js';
import { startFleet } from '../../bench/support/fleet.js';
import { tentacleIdentities } from '../../bench/support/identities.js';
import { describeMachine, type Machine } from '../../bench/support/report.js';
import { distribution, MiB, type Distribution } from '../../bench/support/stats.js';
import { stopAllWorkers } from '../../bench/support/workers.js';
import { ApiClient } from '../../src/api/client.js';
import type { TaskState, TaskView } from '../../src/api/contract.js';
import { freePort, ok, startServer, tempDir, waitFor, type ServerProcess } from '../../test/e2e/harness.js';
import { machinesIn, registerMachines, relinkedSince } from './machines.js';
import { heapOfMetrics, judgeMemory, readRss, sampleHeap, sampleRss, SHORTEST_JUDGED_LOAD_MS, windowsFor, type HeapSample, type MemoryVerdict, type RssSample } from './memory.js';
import { runWorkload, type WorkloadResult } from './workload.js';

export interface SoakOptions {
  tentacles: number;
  durationMs: number;
  /** Fleet processes the tentacles are spread over. */
  processes: number;
  /** Machines per task. */
  batchSize: number;
  /** Tasks in flight at once. */
  parallel: number;
  linesPerScript: number;
  graceMs: number;
  /** How often the server's RSS is read. */
  sampleMs: number;
  /** Largest accepted RSS growth between the first and the last window, as a fraction. */
  memoryTolerance: number;
  /** How often a running task's state is read. */
  pollMs: number;
  /** A postgres:// URL; the embedded SQLite store when absent. */
  store?: string;
}

/**
 * Fleet processes: about 500 tentacles each. Not fewer and larger: a process stalls every
 * tentacle it hosts while it forks scripts (fork costs with the parent's size), and at 2,500
 * a process their links missed heartbeats for 15 s and all 10,000 dropped (2026-12-06).
 */
export function defaultProcesses(tentacles: number): number {
  return Math.min(40, Math.ceil(tentacles / 500));
}

export const DEFAULT_SOAK_OPTIONS: SoakOptions = {
  tentacles: 2000,
  durationMs: 5 * 60_000,
  processes: defaultProcesses(2000),
  batchSize: 50,
  parallel: 8,
  linesPerScript: 20,
  graceMs: 120_000,
  sampleMs: 5000,
  memoryTolerance: 0.1,
  pollMs: 500,
};

export interface Check {
  passed: boolean;
  /** Set when the run could not tell (the check then does not fail it). */
  skipped?: true;
  detail: string;
}

export interface FleetSummary {
  processes: number;
  /** Machines whose link dropped during the load (offline at its end, or reconnected): 0 when healthy. */
  relinked: number;
  /** RSS of each fleet process at the end of the load. */
  rssMiB: number[];
}

export interface SoakResult {
  passed: boolean;
  checks: { tasksFinished: Check; logsComplete: Check; memoryStable: Check };
  environment: { date: string; node: string; machine: Machine; store: 'sqlite' | 'postgres' };
  options: SoakOptions;
  setup: { registerAndConnectMs: number };
  load: {
    durationMs: number;
    tasks: number;
    tasksSucceeded: number;
    machineRuns: number;
    linesExpected: number;
    linesReceived: number;
    leftUnfinished: number;
    requestFailures: number;
    /** The first problems found (all are counted in problemCount). */
    problems: string[];
    problemCount: number;
  };
  throughput: { tasksPerMinute: number; machineRunsPerSecond: number; linesPerSecond: number };
  latency: { taskMs: Distribution; machineRunMs: Distribution };
  memory: MemoryVerdict & {
    samples: { atSeconds: number; rssMiB: number }[];
    /** The V8 heap in use and its external memory (Buffers), from the server's /metrics. */
    heapSamples: { atSeconds: number; heapUsedMiB: number; externalMiB: number }[];
  };
  fleet: FleetSummary;
}

const ENVIRONMENT = 'Soak';
const ROLE = 'soak';
const PROBLEMS_KEPT = 20;

export async function runSoak(options: SoakOptions, progress: (line: string) => void = () => {}): Promise<SoakResult> {
  const dataDir = await tempDir('soak-server');
  const cleanups: (() => unknown)[] = [() => rm(dataDir, { recursive: true, force: true })];
  // The benchmarks' fleet wants their context; of it the soak needs only the clean-ups.
  const context: BenchContext = { param: (_name, fallback) => fallback, log: progress, defer: (cleanup) => cleanups.push(cleanup) };
  let server: ServerProcess | undefined;
  let sampler: ReturnType<typeof sampleRss> | undefined;
  let heapSampler: ReturnType<typeof sampleHeap> | undefined;
  try {
    server = await startServer({
      name: 'soak-server',
      dataDir,
      httpsPort: await freePort(),
      commsPort: await freePort(),
      extraArgs: options.store ? ['--store', options.store] : [],
    });
    const apiKey = server.adminKey ?? (await ok('reef', ['apikey', 'create', '--data', dataDir, '--name', `soak-${Date.now()}`, ...(options.store ? ['--store', options.store] : [])]));
    const api = new ApiClient({ server: server.url, apiKey, serverThumbprint: server.thumbprint });
    sampler = sampleRss(server.child.pid!, options.sampleMs);
    // A refused scrape rejects, and the sampler skips it.
    heapSampler = sampleHeap(async () => heapOfMetrics(await text(await api.request('GET', '/metrics')), Date.now()), options.sampleMs);
    progress(`server started (pid ${server.child.pid}); registering ${options.tentacles} tentacles and starting them in ${options.processes} processes`);

    const setupStarted = Date.now();
    const identities = await tentacleIdentities(options.tentacles);
    const machines = identities.map((identity, i) => ({ name: `soak-${String(i + 1).padStart(5, '0')}`, thumbprint: identity.thumbprint }));
    await registerMachines(api, machines, ENVIRONMENT, ROLE);
    const fleet = await startFleet(context, options.processes);
    await fleet.grow({ identities, serverThumbprint: server.thumbprint, address: `tcp://127.0.0.1:${server.commsPort}` }, options.tentacles);
    await waitFor(`all ${options.tentacles} tentacles online`, async () => (await machinesIn(api, ENVIRONMENT)).every((m) => m.online), 60_000);
    const registerAndConnectMs = Date.now() - setupStarted;
    progress(`${options.tentacles} tentacles online after ${(registerAndConnectMs / 1000).toFixed(1)} s; running tasks for ${options.durationMs / 1000} s`);

    const workload = await runWorkload({ api, machineNames: machines.map((m) => m.name), ...options });
    const leftUnfinished = await unfinishedTaskCount(api);
    const samples = sampler.stop();
    const heapSamples = heapSampler.stop();
    const fleetSummary: FleetSummary = {
      processes: fleet.workers.length,
      relinked: relinkedSince(await machinesIn(api, ENVIRONMENT), workload.startedAt),
      rssMiB: fleet.workers.map((worker) => mib(readRss(worker.pid) ?? 0)),
    };
    progress(`load done: ${workload.tasks.length} tasks`);
    return assess(options, { registerAndConnectMs, workload, leftUnfinished, samples, heapSamples, fleet: fleetSummary });
  } finally {
    sampler?.stop();
    heapSampler?.stop();
    await stopAllWorkers();
    await server?.kill();
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

interface Observations {
  registerAndConnectMs: number;
  workload: WorkloadResult;
  /** Tasks the server still had Queued or Running after the grace period. */
  leftUnfinished: number;
  samples: RssSample[];
  heapSamples: HeapSample[];
  fleet: FleetSummary;
}
/** Turns what the run saw into figures and the three verdicts. */
function assess(options: SoakOptions, seen: Observations): SoakResult {
  const { workload, leftUnfinished } = seen;
  const tasks = workload.tasks;
  const memory = judgeMemory(seen.samples, workload, windowsFor(workload.stoppedAt - workload.startedAt, options.memoryTolerance), seen.heapSamples);
  const problems = [...workload.requestFailures.map((message) => `request failed: ${message}`), ...tasks.flatMap((t) => t.problems)];
  const stuck = tasks.filter((t) => t.state === 'stuck').length;
  const finishedMachineRuns = tasks.filter((t) => t.state !== 'stuck').reduce((sum, t) => sum + t.machines, 0);
  const linesExpected = finishedMachineRuns * options.linesPerScript;
  const linesReceived = tasks.reduce((sum, t) => sum + t.linesReceived, 0);
  const logProblems = tasks.reduce((sum, t) => sum + t.problems.length, 0) - stuck;
  // Every task created counts, and the last of them finished only at finishedAt.
  const loadSeconds = (workload.finishedAt - workload.startedAt) / 1000;
  const checks = {
    tasksFinished: {
      passed: stuck === 0 && leftUnfinished === 0 && workload.requestFailures.length === 0 && tasks.length > 0,
      detail: `${tasks.length} tasks created, ${stuck} not finished within the grace period, ${leftUnfinished} left Queued or Running on the server, ${workload.requestFailures.length} API requests failed`,
    },
    logsComplete: {
      passed: logProblems === 0 && linesReceived === linesExpected,
      detail: `${linesReceived} of ${linesExpected} expected lines stored; ${logProblems} machine logs or outcomes not as expected`,
    },
    memoryStable: {
      passed: memory.passed,
      ...(memory.judged ? {} : { skipped: true as const }),
      detail:
        `server RSS ${mib(memory.firstWindowMeanBytes)} MiB (mean of the ${memory.windowMs / 1000} s after ${memory.warmupMs / 1000} s of warm-up) -> ` +
        `${mib(memory.lastWindowMeanBytes)} MiB (mean of the last ${memory.windowMs / 1000} s): ${(memory.growth * 100).toFixed(1)}%` +
        (memory.heap ? `; V8 heap at its lowest ${mib(memory.heap.firstWindowLowBytes)} -> ${mib(memory.heap.lastWindowLowBytes)} MiB: ${(memory.heap.growth * 100).toFixed(1)}%` : '') +
        ' ' +
        (memory.judged ? `(tolerance ${(options.memoryTolerance * 100).toFixed(0)}%)` : `(not judged: a load under ${SHORTEST_JUDGED_LOAD_MS / 60_000} minutes measures warm-up)`),
    },
  };
  return {
    passed: checks.tasksFinished.passed && checks.logsComplete.passed && checks.memoryStable.passed,
    checks,
    environment: { date: new Date().toISOString(), node: process.version, machine: describeMachine(), store: options.store ? 'postgres' : 'sqlite' },
    options,
    setup: { registerAndConnectMs: seen.registerAndConnectMs },
    load: {
      durationMs: workload.stoppedAt - workload.startedAt,
      tasks: tasks.length,
      tasksSucceeded: tasks.filter((t) => t.state === 'Success').length,
      machineRuns: finishedMachineRuns,
      linesExpected,
      linesReceived,
      leftUnfinished,
      requestFailures: workload.requestFailures.length,
      problems: problems.slice(0, PROBLEMS_KEPT),
      problemCount: problems.length,
    },
    throughput: {
      tasksPerMinute: round((tasks.length / loadSeconds) * 60),
      machineRunsPerSecond: round(finishedMachineRuns / loadSeconds),
      linesPerSecond: round(linesReceived / loadSeconds),
    },
    latency: {
      taskMs: distribution(tasks.flatMap((t) => (t.latencyMs === undefined ? [] : [t.latencyMs]))),
      machineRunMs: distribution(tasks.flatMap((t) => t.machineRunMs)),
    },
    memory: {
      ...memory,
      samples: seen.samples.map((s) => ({ atSeconds: round((s.at - workload.startedAt) / 1000), rssMiB: mib(s.rssBytes) })),
      heapSamples: seen.heapSamples.map((s) => ({ atSeconds: round((s.at - workload.startedAt) / 1000), heapUsedMiB: mib(s.heapUsedBytes), externalMiB: mib(s.externalBytes) })),
    },
    fleet: seen.fleet,
  };
}

/** Tasks the server still has Queued or Running (the list is newest first, 1000 at most a page). */
async function unfinishedTaskCount(api: ApiClient): Promise<number> {
  const states: TaskState[] = ['Queued', 'Running'];
  const pages = await Promise.all(states.map((state) => api.json<{ items: TaskView[] }>('GET', `/api/tasks?state=${state}&limit=1000`)));
  return pages.reduce((sum, page) => sum + page.items.length, 0);
}

function mib(bytes: number): number {
  return round(bytes / MiB);
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

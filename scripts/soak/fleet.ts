/**
 * The simulated fleet from the soak's side: forks fleet-host processes, deals the machine
 * names out among them, and starts and stops them. Names go out round-robin so that a
 * batch of consecutive machines is spread over every process (and so over both cores)
 * rather than spawning all its scripts in one.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { logFile } from '../../test/e2e/harness.js';
import type { FleetAssignment, FleetCommand, FleetReport } from './fleet-host.js';

const HOST = new URL('./fleet-host.ts', import.meta.url).pathname;

export interface FleetSummary {
  processes: number;
  /** Tentacle links lost during the run, over the whole fleet. */
  disconnects: number;
  /** RSS of every fleet process just before it stopped. */
  rssBytes: number[];
}

export interface Fleet {
  pids: number[];
  /** Closes every agent cleanly and reports what the processes saw. */
  stop(timeoutMs?: number): Promise<FleetSummary>;
  /** Last resort after a failure: kills whatever is left. */
  kill(): void;
}

export async function startFleet(assignment: Omit<FleetAssignment, 'names'>, names: readonly string[], processes: number, timeoutMs: number): Promise<Fleet> {
  const count = Math.max(1, Math.min(processes, names.length));
  const children: ChildProcess[] = [];
  const kill = () => children.forEach((child) => child.kill('SIGKILL'));
  try {
    for (let i = 0; i < count; i++) children.push(await forkHost(`soak-fleet-${i + 1}`));
    await Promise.all(
      children.map((child, i) => {
        const command: FleetCommand = { type: 'start', assignment: { ...assignment, names: names.filter((_, n) => n % count === i) } };
        child.send(command);
        return nextReport(child, 'ready', timeoutMs);
      }),
    );
  } catch (err) {
    kill();
    throw err;
  }
  return {
    pids: children.map((child) => child.pid!),
    kill,
    async stop(stopTimeoutMs = 30_000) {
      const reports = await Promise.all(
        children.map((child) => {
          child.send({ type: 'stop' } satisfies FleetCommand);
          return nextReport(child, 'stopped', stopTimeoutMs);
        }),
      ).finally(kill);
      return { processes: count, disconnects: reports.reduce((sum, r) => sum + r.disconnects, 0), rssBytes: reports.map((r) => r.rssBytes) };
    },
  };
}

async function forkHost(name: string): Promise<ChildProcess> {
  // tsx loads the TypeScript; the parent's own flags (a test runner's, say) are not for it.
  const child = fork(HOST, [], { execArgv: ['--import', 'tsx'], serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  child.stderr!.pipe(await logFile(name));
  return child;
}

/** Resolves with the host's next report of `type`; rejects if it fails, exits or takes too long. */
function nextReport<T extends FleetReport['type']>(child: ChildProcess, type: T, timeoutMs: number): Promise<Extract<FleetReport, { type: T }>> {
  return new Promise((resolve, reject) => {
    const done = (settle: () => void) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      settle();
    };
    const onMessage = (report: FleetReport) => {
      if (report.type === type) done(() => resolve(report as Extract<FleetReport, { type: T }>));
      else if (report.type === 'failed') done(() => reject(new Error(`fleet process ${child.pid} failed: ${report.message}`)));
    };
    const onExit = (code: number | null, signal: string | null) =>
      done(() => reject(new Error(`fleet process ${child.pid} exited (${signal ?? code}) before reporting "${type}"; see its log in test-output/e2e/`)));
    const timer = setTimeout(() => done(() => reject(new Error(`fleet process ${child.pid} did not report "${type}" within ${timeoutMs} ms`))), timeoutMs);
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

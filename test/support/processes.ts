/**
 * Processes and temp folders a test starts, and the guarantee that none outlives it.
 *
 * Each child runs detached, in its own process group, so killing the group takes its
 * descendants with it (a `reef` started through tsx, a daemon's workers). Teardown
 * (`stopAll`, called from a file's `after` hook, which the test runner still runs when a
 * test times out) signals each child, waits for it, then kills what is left of its group
 * and removes the temp folders. When the test file's process itself is ended (the runner
 * or a user sends SIGTERM, SIGINT or SIGHUP, or the file calls process.exit), the same
 * cleanup runs synchronously from an exit handler: process.kill and rmSync do not wait.
 *
 * Every child also carries REEF_TEST_RUN in its environment (the runner's, when
 * `npm test` set it), which is how scripts/check-leftovers.ts recognises a process of the
 * run after the suite, without ever flagging an unrelated one.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The environment variable that marks the processes of one test run. */
export const RUN_MARKER = 'REEF_TEST_RUN';

// A file run on its own (not through `npm test`) gets a marker of its own, so its children
// are still recognisable; the children of the whole run inherit the run's.
process.env[RUN_MARKER] ??= `file-${process.pid}-${Date.now()}`;

const children = new Set<ChildProcess>();
const folders = new Set<string>();

/**
 * spawn(), detached into a process group of its own, marked as this run's, and killed with
 * its group by `stopAll` or when this process ends.
 */
export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, args, { ...options, detached: true, env: { [RUN_MARKER]: process.env[RUN_MARKER], ...(options.env ?? process.env) } });
  if (child.pid !== undefined) {
    children.add(child);
    child.once('exit', () => children.delete(child));
  }
  return child;
}

export interface RunResult {
  /** The exit code; null when a signal (or the timeout) ended it. */
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to its end as a tracked child and collects its output; after `timeoutMs`
 * its whole process group is killed (the result then has code null).
 */
export function runTracked(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs: number }): Promise<RunResult> {
  const child = spawnTracked(command, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => killGroup(child), options.timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      killGroup(child); // anything it left behind in its group
      resolve({ code, stdout, stderr });
    });
  });
}

/** A temp folder under the system's tmpdir, removed by `stopAll` or when this process ends. */
export async function trackedTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  folders.add(dir);
  return dir;
}

/** Removes a temp folder now (and forgets it). */
export async function removeTempDir(dir: string): Promise<void> {
  folders.delete(dir);
  await rm(dir, { recursive: true, force: true });
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Kills whatever is left of the child's process group; quiet when the group is gone. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the group is empty already.
  }
}

/**
 * Sends `signal` to the child alone (tests choose how it dies), waits for its exit
 * (SIGKILL after `graceMs`), then kills the rest of its group.
 */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (!exited(child)) {
    const gone = once(child, 'exit');
    child.kill(signal);
    const timer = setTimeout(() => killGroup(child), graceMs);
    await gone;
    clearTimeout(timer);
  }
  killGroup(child);
}

/** Stops every tracked child with its group and removes every tracked temp folder. */
export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((child) => stopProcess(child)));
  await Promise.all([...folders].map((dir) => removeTempDir(dir)));
}

/** The last resort, when this process ends: synchronous, so it completes before the exit. */
function cleanUpNow(): void {
  for (const child of children) killGroup(child);
  children.clear();
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
  folders.clear();
}

process.on('exit', cleanUpNow);
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  // Node exits on these without running 'exit' handlers unless someone listens. When the
  // test runner listens too, it reports and exits; else this one does, as node would.
  process.once(signal, () => {
    cleanUpNow();
    if (process.listenerCount(signal) === 0) process.exit(128 + (signal === 'SIGHUP' ? 1 : signal === 'SIGINT' ? 2 : 15));
  });
}

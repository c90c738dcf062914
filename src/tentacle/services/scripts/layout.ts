/**
 * The on-disk layout of one script: the files of its ticket directory
 * (workspaceDir/<ticket>/), what they hold, and small helpers to read them.
 */
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';

export const FILE = {
  stdout: 'stdout.log',
  stderr: 'stderr.log',
  exit: 'exit',
  meta: 'meta.json',
  cancel: 'cancel.json',
  log: 'log.jsonl',
  result: 'result.json',
  completed: 'completed',
  work: 'work',
} as const;

export type OutputStream = 'stdout' | 'stderr';

/** meta.json: the wrapper process, so a restarted Tentacle can tell whether it still runs. */
export interface Meta {
  pid: number;
  pidStartTime: string | null;
  startedAt: string;
  timeoutMs?: number;
  deadline?: number;
}

/** result.json: written last, once the log holds every line. */
export interface Result {
  exitCode: number | null;
  cancelled: boolean;
  timedOut: boolean;
  orphaned: boolean;
  error?: string;
  finishedAt: string;
}

/** cancel.json: the Tentacle stopped the script, and why. */
export interface CancelMarker {
  reason: 'cancelled' | 'timeout';
  at: string;
}

/** The exit code the wrapper wrote to `exit`, if it did yet. */
export async function readExit(dir: string): Promise<number | undefined> {
  try {
    const text = await readFile(path.join(dir, FILE.exit), 'utf8');
    const code = Number.parseInt(text, 10);
    return Number.isNaN(code) ? undefined : code;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export async function statOrNull(file: string) {
  try {
    return await stat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Deletes everything of a completed ticket but its `completed` marker. */
export async function emptyTombstone(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name !== FILE.completed) await rm(path.join(dir, name), { recursive: true, force: true });
  }
}

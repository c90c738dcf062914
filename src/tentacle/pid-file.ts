import { readFileSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { ReefError } from '../errors.js';

/**
 * Pid files for the supervised service. A pid file can outlive its process (crash, reboot,
 * SIGKILL) and its pid can be reused by an unrelated process, so "is it running" means:
 * the pid exists, is not a zombie, and (where /proc shows it) its command line is ours.
 */

export async function readPidFile(path: string): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

/** True when `pid` is a live (non-zombie) process and, if `marker` is given and /proc can tell, its command line contains it. */
export function isProcessAlive(pid: number, marker?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false; // EPERM: alive, owned by someone else
  }
  const stat = readProc(`/proc/${pid}/stat`);
  if (stat !== null) {
    // "pid (comm) S ...": the state letter follows the last ")"; Z and X are dead but unreaped.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
  }
  if (marker !== undefined) {
    const cmdline = readProc(`/proc/${pid}/cmdline`);
    if (cmdline !== null && !cmdline.split('\0').includes(marker)) return false;
  }
  return true;
}

/**
 * True only when /proc shows that `pid`'s environment holds every `KEY=value` given. Used to
 * recognise an agent we started (the supervisor sets REEF_TENTACLE_INSTANCE and
 * REEF_TENTACLE_ROOT for it); false whenever it cannot be proven, so nothing else is killed.
 */
export function processHasEnv(pid: number, entries: string[]): boolean {
  const environ = readProc(`/proc/${pid}/environ`);
  if (environ === null) return false;
  const vars = new Set(environ.split('\0'));
  return entries.every((e) => vars.has(e));
}

function readProc(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/**
 * Creates the pid file for this process, exclusively. A pid file whose process is gone
 * (or is not ours) is stale and replaced; a live one means another supervisor owns the
 * instance, which is an error.
 */
export async function claimPidFile(path: string, marker: string, pid = process.pid): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o644);
      try {
        await handle.writeFile(`${pid}\n`);
      } finally {
        await handle.close();
      }
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const other = await readPidFile(path);
    if (other !== null && other !== pid && isProcessAlive(other, marker)) {
      throw new ReefError('REEF_SERVICE_RUNNING', `Already running as process ${other} (pid file ${path}).`);
    }
    await rm(path, { force: true });
  }
  throw new ReefError('REEF_SERVICE_RUNNING', `Could not create pid file ${path}: it keeps reappearing; is another start in progress?`);
}

/** Removes the pid file only if it still names `pid`, so a late cleanup never deletes a successor's file. */
export async function releasePidFile(path: string, pid = process.pid): Promise<void> {
  if ((await readPidFile(path).catch(() => null)) === pid) await rm(path, { force: true });
}

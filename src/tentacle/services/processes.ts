import { readdir, readFile } from 'node:fs/promises';

/**
 * Process identity that survives pid reuse: a pid plus its start time (field 22 of
 * /proc/<pid>/stat, in clock ticks since boot). Where /proc is missing (not Linux) the
 * start time is null and only the pid is compared.
 */
interface ProcStat {
  state: string;
  pgrp: number;
  startTime: string;
}

async function readProcStat(pid: number): Promise<ProcStat | null | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return process.platform === 'linux' ? null : undefined;
    }
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses; fields after it do not.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const [state, , pgrp] = fields;
  const startTime = fields[19];
  if (state === undefined || pgrp === undefined || startTime === undefined) return undefined;
  return { state, pgrp: Number(pgrp), startTime };
}

/** The start time to record next to a pid, or null where it cannot be read. */
export async function processStartTime(pid: number): Promise<string | null> {
  return (await readProcStat(pid))?.startTime ?? null;
}

/**
 * True while the process that had `startTime` at `pid` is still running. A zombie counts
 * as gone: it runs nothing, and in a container whose pid 1 does not reap it may linger.
 */
export async function isProcessAlive(pid: number, startTime: string | null): Promise<boolean> {
  const stat = await readProcStat(pid);
  if (stat === null) return false;
  if (stat === undefined) return signalZero(pid);
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return startTime === null || stat.startTime === startTime;
}

/** True while any process of group `pgid` is alive (zombies excluded on Linux). */
export async function isGroupAlive(pgid: number): Promise<boolean> {
  if (!signalZero(-pgid)) return false;
  if (process.platform !== 'linux') return true;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readProcStat(Number(entry));
    if (stat && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') return true;
  }
  return false;
}

/** Sends `signal` to every process of group `pgid`; a group already gone is fine. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

function signalZero(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

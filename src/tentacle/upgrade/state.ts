/**
 * The instance's upgrade state file (`<home>/upgrade.json`): what the last self-upgrade
 * swapped, until when the new version has to reach a server, and how it ended. Three
 * processes share it: the old agent writes it pending before it restarts, the new agent
 * marks it confirmed once a server reached it, the watcher marks it rolled back otherwise
 * (src/tentacle/upgrade/watch.ts). Every write is atomic (a rename), so a reader never
 * sees half of one.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../durable-fs.js';
import { homeFiles } from '../paths.js';

export type UpgradeStateName = 'pending' | 'confirmed' | 'rolled-back';

export interface UpgradeState {
  state: UpgradeStateName;
  fromVersion: string;
  toVersion: string;
  /** The executable swapped (the service starts it); `<executable>.previous` holds the one before. */
  executable: string;
  /** When the new version must have reached a server, else the watcher rolls back (ISO time). */
  deadline: string;
  /** When the new executable was swapped in (ISO time): the rollback window is deadline - startedAt. */
  startedAt?: string;
  /** The last change of state (ISO time). */
  at: string;
  reason?: string;
  /** The new agent's pid, recorded when it starts: the watcher stops it if it hangs. */
  agentPid?: number;
  /** The watcher's pid: a new agent that finds it gone (a reboot) starts another. */
  watcherPid?: number;
}

export function upgradeStatePath(home: string): string {
  return join(home, homeFiles.upgradeState);
}

/** The state, or null when there is none (no upgrade yet) or it cannot be read as one. */
export async function readUpgradeState(path: string): Promise<UpgradeState | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return null;
  }
  try {
    const parsed = JSON.parse(text) as Partial<UpgradeState>;
    if (typeof parsed.state !== 'string' || typeof parsed.toVersion !== 'string' || typeof parsed.executable !== 'string') return null;
    return parsed as UpgradeState;
  } catch {
    return null;
  }
}

export async function writeUpgradeState(path: string, state: UpgradeState): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

/** Applies `change` to the state if `when` holds for it; answers the state as it is afterwards. */
export async function updateUpgradeState(
  path: string,
  when: (state: UpgradeState) => boolean,
  change: (state: UpgradeState) => Partial<UpgradeState>,
): Promise<UpgradeState | null> {
  const current = await readUpgradeState(path);
  if (!current || !when(current)) return current;
  const next = { ...current, ...change(current), at: new Date().toISOString() };
  await writeUpgradeState(path, next);
  return next;
}

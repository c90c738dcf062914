/**
 * The upgrade watcher: `tentacle upgrade-watch --instance N` (hidden), started detached by
 * the old agent from the previous executable just before it restarts into the new one. It
 * outlives the restart (its own session; systemd's KillMode=process stops only the agent)
 * and waits for the new agent to confirm in the state file that a server reached it. If
 * the deadline passes first, it puts the previous executable back, records why in the state
 * file and restarts the service, so the old version comes back and tells the server.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { formatDuration } from '../../format.js';
import type { Logger } from '../../logging.js';
import { homeFiles, SUPERVISOR_MARKER } from '../paths.js';
import { isProcessAlive, readPidFile } from '../pid-file.js';
import { RESTART_NOW_SIGNAL } from '../supervisor.js';
import { readUpgradeState, updateUpgradeState, upgradeStatePath, type UpgradeState } from './state.js';
import { rollBack } from './swap.js';

export interface WatchOptions {
  home: string;
  logger: Logger;
  /** How often the state file is read. Default 500 ms. */
  pollMs?: number;
  /** Starts the previous version again once it is back in place. */
  restartService(state: UpgradeState): Promise<void>;
}

/** Waits for the pending upgrade's outcome: 'confirmed', 'rolled-back' (by this watcher), or 'none' when there is nothing to watch. */
export async function watchUpgrade(options: WatchOptions): Promise<'confirmed' | 'rolled-back' | 'none'> {
  const path = upgradeStatePath(options.home);
  const first = await readUpgradeState(path);
  if (!first || first.state !== 'pending') return first?.state === 'confirmed' ? 'confirmed' : 'none';
  const upgrade = { toVersion: first.toVersion, at: first.at };
  const same = (s: UpgradeState) => s.toVersion === upgrade.toVersion && s.deadline === first.deadline;
  for (;;) {
    const state = await readUpgradeState(path);
    // Replaced by another upgrade (which has its own watcher), or settled.
    if (!state || !same(state)) return 'none';
    if (state.state === 'confirmed') return 'confirmed';
    if (state.state !== 'pending') return 'none';
    if (Date.now() >= Date.parse(state.deadline)) break;
    await sleep(Math.min(options.pollMs ?? 500, Math.max(10, Date.parse(state.deadline) - Date.now())));
  }
  const limit = formatDuration(Date.parse(first.deadline) - Date.parse(first.at));
  const reason =
    `Tentacle ${first.toVersion} did not reach a server within ${limit} of the upgrade, so the Tentacle rolled back to ${first.fromVersion} ` +
    `(the failed executable is kept as ${first.executable}.failed; its output is in ${join(options.home, homeFiles.log)}).`;
  await rollBack(first.executable);
  const settled = await updateUpgradeState(path, (s) => same(s) && s.state === 'pending', () => ({ state: 'rolled-back', reason }));
  options.logger.warn({ from: first.toVersion, to: first.fromVersion }, `upgrade: ${reason}`);
  if (settled) await options.restartService(settled);
  return 'rolled-back';
}

/**
 * Restarts the service so it starts the executable put back: the supervisor is asked to
 * restart its agent at once (SIGUSR2); under systemd the new agent, if it runs at all, is
 * killed and Restart=always starts the unit's executable again.
 */
export async function restartInstanceService(home: string, state: UpgradeState, logger: Logger): Promise<void> {
  const supervisor = await readPidFile(join(home, homeFiles.pid)).catch(() => null);
  if (supervisor !== null && isProcessAlive(supervisor, SUPERVISOR_MARKER)) {
    process.kill(supervisor, RESTART_NOW_SIGNAL);
    logger.info({ supervisor }, 'upgrade: asked the supervisor to restart the agent');
    return;
  }
  if (state.agentPid !== undefined && isProcessAlive(state.agentPid)) {
    process.kill(state.agentPid, 'SIGKILL');
    logger.info({ agent: state.agentPid }, 'upgrade: stopped the new agent; the service starts the previous one');
  }
}

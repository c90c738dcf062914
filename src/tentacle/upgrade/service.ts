/**
 * The Tentacle's side of `reef machines upgrade` (docs/operations.md, "Upgrading
 * Tentacles"): upgrade.begin / upgrade.upload stage the new executable next to the running
 * one (resumable, SHA-256 checked, by the file transfer code), upgrade.apply checks that it
 * runs and reports the version asked for, swaps it in keeping the previous one, starts the
 * watcher that rolls back unless the new version reaches a server in time, and restarts
 * the service. upgrade.status tells the server how the last upgrade went; the first call
 * a server makes to the new version confirms it.
 *
 * Only the single executable upgrades itself: a Tentacle run by node from a clone or an npm
 * install answers REEF_UPGRADE_UNSUPPORTED, since swapping one file would not upgrade it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import type { UpgradeStatus } from '../../api/tentacle/index.js';
import { ReefError } from '../../errors.js';
import type { Logger } from '../../logging.js';
import { FileService } from '../services/files.js';
import { readUpgradeState, updateUpgradeState, upgradeStatePath, writeUpgradeState } from './state.js';
import { isProcessAlive } from '../pid-file.js';
import { UPGRADE_WATCH_COMMAND } from './commands.js';
import { checkExecutable, previousPath, stagedPath, swapIn } from './swap.js';

export interface UpgradeServiceOptions {
  /** The single executable this Tentacle runs from; null when it runs as node + script (no self-upgrade). */
  executable: string | null;
  home: string;
  /** The version running. */
  version: string;
  logger: Logger;
  /** Starts the detached watcher (from the previous executable) that rolls back if the new version does not come back; answers its pid. */
  startWatcher(previousExecutable: string): number | undefined;
  /** Whether the watcher of that pid still runs (default: a live process with upgrade-watch in its command line). */
  watcherAlive?(pid: number): boolean;
  /** Restarts the service: the agent exits, systemd or the supervisor start the (new) executable. */
  restart(): void;
  /** How long after answering upgrade.apply the agent restarts, so the answer gets out. Default 500 ms. */
  restartDelayMs?: number;
}

export interface UpgradeTarget {
  version: string;
  size: number;
  sha256: string;
}

export class UpgradeService {
  private readonly statePath: string;
  private staging: FileService | undefined;
  private confirming: Promise<void> | undefined;

  constructor(private readonly options: UpgradeServiceOptions) {
    this.statePath = upgradeStatePath(options.home);
  }

  /** Where to resume staging the new executable (0 when nothing matching is staged yet). */
  async begin(target: UpgradeTarget): Promise<{ offset: number }> {
    const executable = await this.upgradable();
    return this.files(executable).beginUpload({ path: stagedPath(executable), size: target.size, sha256: target.sha256 });
  }

  /** Appends `body` to the staged file from `offset`; at full size it is checked against the SHA-256. */
  async upload(target: UpgradeTarget & { offset: number }, body: Readable): Promise<UpgradeTarget> {
    const executable = await this.upgradable();
    const result = await this.files(executable).upload({ path: stagedPath(executable), size: target.size, sha256: target.sha256, offset: target.offset }, body);
    return { version: target.version, size: result.size, sha256: result.sha256 };
  }

  /** Checks the staged file, swaps it in, starts the watcher and restarts (shortly after answering). */
  async apply(request: { version: string; sha256: string; rollbackAfterMs: number }): Promise<{ previousVersion: string; executable: string }> {
    const executable = await this.upgradable();
    const staged = stagedPath(executable);
    const digest = await sha256Of(staged).catch(() => null);
    if (digest === null) throw new ReefError('REEF_NOT_FOUND', `No new executable is staged at ${staged}: send it with upgrade.upload first.`);
    if (digest !== request.sha256.toLowerCase()) {
      throw new ReefError('REEF_HASH_MISMATCH', `The staged ${staged} has SHA-256 ${digest}, not ${request.sha256}: send it again.`);
    }
    await checkExecutable(staged, request.version);
    const { logger, version } = this.options;
    await swapIn(executable);
    const now = Date.now();
    await writeUpgradeState(this.statePath, {
      state: 'pending',
      fromVersion: version,
      toVersion: request.version,
      executable,
      deadline: new Date(now + request.rollbackAfterMs).toISOString(),
      startedAt: new Date(now).toISOString(),
      at: new Date(now).toISOString(),
    });
    await this.recordWatcher(this.options.startWatcher(previousPath(executable)));
    logger.info({ from: version, to: request.version, executable }, 'upgrade: new executable swapped in; restarting');
    setTimeout(() => this.options.restart(), this.options.restartDelayMs ?? 500).unref();
    return { previousVersion: version, executable };
  }

  /** How the last upgrade went; a server asking the new version confirms it. */
  async status(): Promise<UpgradeStatus> {
    await this.confirm();
    const state = await readUpgradeState(this.statePath);
    const { version } = this.options;
    if (!state) return { version, state: 'none' };
    return {
      version,
      state: state.state,
      toVersion: state.toVersion,
      fromVersion: state.fromVersion,
      ...(state.reason ? { reason: state.reason } : {}),
      at: state.at,
    };
  }

  /**
   * Marks a pending upgrade to this version confirmed: a server reached it, so the watcher
   * stands down. Called on every call a server makes (cheap after the first: one read).
   */
  confirm(): Promise<void> {
    this.confirming ??= (async () => {
      const { version, logger } = this.options;
      const confirmed = await updateUpgradeState(
        this.statePath,
        (s) => s.state === 'pending' && s.toVersion === version,
        () => ({ state: 'confirmed' }),
      );
      if (confirmed?.state === 'confirmed' && confirmed.toVersion === version) logger.info({ version }, 'upgrade: confirmed (a server reached the new version)');
    })().catch((err) => {
      this.confirming = undefined; // try again on the next call
      this.options.logger.warn({ err }, 'upgrade: could not record the confirmation');
    });
    return this.confirming;
  }

  /**
   * Records this agent's pid in a pending upgrade to its version, so the watcher can stop it
   * if it hangs. A watcher that is gone (the machine rebooted within the rollback window) is
   * started again, from the previous executable, with a whole window from now.
   */
  async recordStart(pid = process.pid): Promise<void> {
    const { version, executable, logger } = this.options;
    const alive = this.options.watcherAlive ?? ((p: number) => isProcessAlive(p, UPGRADE_WATCH_COMMAND));
    const state = await updateUpgradeState(this.statePath, (s) => s.state === 'pending' && s.toVersion === version, () => ({ agentPid: pid }));
    if (!executable || state?.state !== 'pending' || state.toVersion !== version) return;
    if (state.watcherPid !== undefined && alive(state.watcherPid)) return;
    const window = Math.max(0, Date.parse(state.deadline) - Date.parse(state.startedAt ?? state.at));
    await updateUpgradeState(this.statePath, (s) => s.state === 'pending' && s.toVersion === version, () => ({ deadline: new Date(Date.now() + window).toISOString() }));
    logger.warn({ version }, 'upgrade: the rollback watcher is gone (a reboot?); starting it again');
    await this.recordWatcher(this.options.startWatcher(previousPath(executable)));
  }

  private async recordWatcher(pid: number | undefined): Promise<void> {
    if (pid === undefined) return;
    await updateUpgradeState(this.statePath, (s) => s.state === 'pending', () => ({ watcherPid: pid }));
  }

  private async upgradable(): Promise<string> {
    const { executable } = this.options;
    if (!executable) {
      throw new ReefError(
        'REEF_UPGRADE_UNSUPPORTED',
        'This Tentacle cannot self-upgrade: it runs from a Node.js installation (a git clone or npm), not as the single executable. ' +
          'Upgrade it the way it was installed, or reinstall it as the single executable (docs/operations.md, "Installing the Tentacle as a single executable").',
      );
    }
    try {
      await access(dirname(executable), constants.W_OK);
    } catch {
      throw new ReefError('REEF_UPGRADE_UNSUPPORTED', `This Tentacle cannot self-upgrade: it may not write to ${dirname(executable)}, the folder of its executable.`);
    }
    return executable;
  }

  /** Transfers confined to the executable's folder; the program's own protection does not apply to its staged successor. */
  private files(executable: string): FileService {
    this.staging ??= new FileService({ allowedRoots: [dirname(executable)], logger: this.options.logger });
    return this.staging;
  }
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

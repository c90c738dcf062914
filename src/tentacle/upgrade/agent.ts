import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { isSea } from 'node:sea';
import type { Logger } from '../../logging.js';
import { VERSION } from '../../version.js';
import { homeFiles } from '../paths.js';
import { UPGRADE_WATCH_COMMAND } from './commands.js';
import { UpgradeService } from './service.js';


/**
 * The agent's upgrade service: the single executable can replace itself; a Tentacle run by
 * node from a clone or npm gets one that refuses with REEF_UPGRADE_UNSUPPORTED. A new
 * agent records its pid in a pending upgrade to its version, for the watcher.
 */
export async function startUpgradeService(options: { instance: string; home: string; logger: Logger; restart(): void }): Promise<UpgradeService> {
  const { instance, home, logger } = options;
  const service = new UpgradeService({
    executable: isSea() ? process.execPath : null,
    home,
    version: VERSION,
    logger,
    restart: options.restart,
    startWatcher: (previous) => {
      // Detached in its own session with its own log handle: it outlives the agent's restart.
      mkdirSync(join(home, homeFiles.logs), { recursive: true, mode: 0o700 });
      const log = openSync(join(home, homeFiles.log), 'a', 0o600);
      try {
        const watcher = spawn(previous, [UPGRADE_WATCH_COMMAND, '--instance', instance], { cwd: home, detached: true, stdio: ['ignore', log, log], env: process.env });
        watcher.unref();
        return watcher.pid;
      } finally {
        closeSync(log);
      }
    },
  });
  await service.recordStart().catch((err: unknown) => logger.warn({ err }, 'upgrade: could not record the agent in the upgrade state'));
  return service;
}

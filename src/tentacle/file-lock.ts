import { mkdir, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReefError } from '../errors.js';

export interface LockOptions {
  /** How long to wait for another process to release the lock. */
  waitMs?: number;
  /** A lock older than this is taken to be left behind by a crashed process. */
  staleMs?: number;
}

/**
 * Runs `fn` while holding `<lockPath>` (a folder: mkdir is atomic on every file system).
 * Guards read-modify-write of shared files such as instances.json, where two
 * `create-instance` runs at once would otherwise lose one of the two updates.
 */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const waitMs = options.waitMs ?? 10_000;
  const staleMs = options.staleMs ?? 30_000;
  const deadline = Date.now() + waitMs;
  await mkdir(dirname(lockPath), { recursive: true, mode: 0o700 });
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    try {
      await mkdir(lockPath);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = await stat(lockPath).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > staleMs) {
        await rm(lockPath, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new ReefError(
          'REEF_LOCK_TIMEOUT',
          `Timed out waiting for ${lockPath}: another tentacle command is changing the same files. ` +
            `If none is running, remove that folder and retry.`,
        );
      }
      await sleep(delay);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { recursive: true, force: true });
  }
}

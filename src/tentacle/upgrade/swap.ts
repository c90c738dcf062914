/**
 * The file steps of a self-upgrade, next to the executable so every step is a rename on one
 * file system: the new file is staged as `<exe>.reef-upgrade`, checked by running it
 * (`<new> version --format json` must report the expected version), then swapped in with
 * the old one kept as `<exe>.previous`. At no moment is there no `<exe>`: the service can
 * restart at any point and finds a whole executable, old or new.
 */
import { execFile } from 'node:child_process';
import { chmod, link, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { syncDir } from '../../durable-fs.js';
import { errorMessage, ReefError } from '../../errors.js';

export const STAGED_SUFFIX = '.reef-upgrade';
export const PREVIOUS_SUFFIX = '.previous';
/** The version that failed, kept after a rollback for a look at what went wrong. */
export const FAILED_SUFFIX = '.failed';

/** How long the new executable may take to print its version. */
const CHECK_TIMEOUT_MS = 30_000;

export function stagedPath(executable: string): string {
  return executable + STAGED_SUFFIX;
}

export function previousPath(executable: string): string {
  return executable + PREVIOUS_SUFFIX;
}

/** Runs `<file> version --format json`; resolves when it reports `version`, else rejects saying what it did. */
export async function checkExecutable(file: string, version: string): Promise<void> {
  await chmod(file, 0o755);
  const output = await new Promise<string>((resolve, reject) => {
    execFile(file, ['version', '--format', 'json'], { timeout: CHECK_TIMEOUT_MS, maxBuffer: 64 * 1024, env: { ...process.env, NODE_OPTIONS: '' } }, (err, stdout, stderr) => {
      if (err) {
        reject(new ReefError('REEF_UPGRADE_CHECK_FAILED', `The new executable did not run ("version" failed: ${errorMessage(err)}${stderr.trim() ? `; it said: ${stderr.trim().slice(0, 500)}` : ''}); nothing was changed.`));
      } else resolve(stdout);
    });
  });
  let reported: unknown;
  try {
    reported = (JSON.parse(output) as { version?: unknown }).version;
  } catch {
    reported = undefined;
  }
  if (reported !== version) {
    throw new ReefError(
      'REEF_UPGRADE_CHECK_FAILED',
      `The new executable reports version ${typeof reported === 'string' ? reported : `"${output.trim().slice(0, 200)}"`} instead of ${version}; nothing was changed.`,
    );
  }
}

/**
 * Swaps the staged file in: the current executable is hard-linked as `<exe>.previous`
 * (through a temp name, so an older `.previous` is replaced atomically), then the staged
 * file is renamed over `<exe>`.
 */
export async function swapIn(executable: string): Promise<void> {
  const previous = previousPath(executable);
  const temp = `${previous}.tmp`;
  await rm(temp, { force: true });
  await link(executable, temp);
  await rename(temp, previous);
  await rename(stagedPath(executable), executable);
  await syncDir(dirname(executable));
}

/** Puts `<exe>.previous` back as `<exe>`, keeping the one that failed as `<exe>.failed`. */
export async function rollBack(executable: string): Promise<void> {
  const failed = executable + FAILED_SUFFIX;
  await rm(failed, { force: true });
  await link(executable, failed).catch(() => undefined);
  await rename(previousPath(executable), executable);
  await syncDir(dirname(executable));
}

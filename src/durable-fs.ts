import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Makes renames and new entries in `dir` survive a machine crash. Best effort: some file
 * systems (and Windows) refuse fsync on a folder; the rename is still atomic there, only
 * its durability is weaker.
 */
export async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // not supported here
  }
}

export interface AtomicWriteOptions {
  /** File mode of the result; 0600 by default, since Reef's files often hold secrets. */
  mode?: number;
  /** Mode for any folder created on the way. */
  dirMode?: number;
}

/**
 * Writes `data` so that readers see either the old file or the whole new one, never a torn
 * one: a temp file in the same folder (same file system, so rename is atomic), fsync,
 * rename, fsync of the folder. The temp file is created with the final mode, so a secret
 * is never briefly readable by others, and the rename replaces any looser earlier file.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const mode = options.mode ?? 0o600;
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: options.dirMode ?? 0o700 });
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.chmod(mode); // the umask may have removed bits, or the caller asked for wider
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await syncDir(dir);
}

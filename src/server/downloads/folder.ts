import { createHash } from 'node:crypto';
import { constants, watch, type BigIntStats, type FSWatcher } from 'node:fs';
import { open, readdir, realpath, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errorMessage, ReefError } from '../../errors.js';
import type { Logger } from '../../logging.js';
import { isServableName } from './names.js';

/** One file the server serves, as the index shows it. */
export interface DownloadFile {
  name: string;
  size: number;
  /** Lowercase hex. */
  sha256: string;
  modified: Date;
}

/** What the folder holds now. */
export interface DownloadsListing {
  dir: string;
  /** False when the folder is missing (or cannot be read: see `problem`). */
  exists: boolean;
  /** Why an existing folder could not be read. */
  problem?: string;
  files: DownloadFile[];
}

/** A served file opened for one response; the caller closes `handle`. */
export interface OpenDownload extends DownloadFile {
  handle: FileHandle;
}

/** Tuning; tests shorten the debounce. */
export interface DownloadsFolderOptions {
  logger: Logger;
  /** How long after the last change in the folder it is scanned (and new files hashed). Default 300 ms. */
  settleMs?: number;
  /** Files hashed at once. Default 2: enough to not queue a small file behind a large one. */
  hashConcurrency?: number;
}

/**
 * O_NOFOLLOW: the name was resolved to a real path just before; if that path is a symlink
 * by now (swapped in meanwhile), the open fails instead of following it out of the folder.
 * O_NONBLOCK: opening a FIFO put there must not block; the fstat then refuses it.
 */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const CHUNK_BYTES = 1024 * 1024;
/** A file that keeps changing under the hash (still being copied in) is tried this often per request. */
const OPEN_ATTEMPTS = 3;

/**
 * The folder of packaged Tentacles and server tarballs the server hands out (see
 * docs/operations.md, "Machines install from the server"). It serves only regular files
 * directly in the folder, under names `isServableName` accepts; a symlink is followed only
 * to another such file of the same folder.
 *
 * Each file's SHA-256 is computed once per version of the file: the cache key is the
 * file's identity and state (device, inode, size, modification and change times in
 * nanoseconds), read with fstat from the very handle that is hashed and served. A file
 * replaced by a rename is a new inode; one rewritten in place has new times: either way
 * it gets a new key, so the old hash is never served for it. A hash whose file changed
 * while it was read is thrown away. The folder is watched, so a file added later is hashed
 * in the background, before anyone asks for it; every listing also rescans the folder, so
 * nothing depends on the watch (a folder created after start-up, a filesystem without
 * inotify).
 */
export class DownloadsFolder {
  readonly dir: string;
  private readonly logger: Logger;
  private readonly settleMs: number;
  private readonly hashing: Semaphore;
  /** Identity key -> SHA-256 hex, for the files the last scan saw (and any opened since). */
  private readonly digests = new Map<string, string>();
  private readonly pending = new Map<string, Promise<string>>();
  private watcher: FSWatcher | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private closed = false;

  constructor(dir: string, options: DownloadsFolderOptions) {
    this.dir = dir;
    this.logger = options.logger;
    this.settleMs = options.settleMs ?? 300;
    this.hashing = new Semaphore(options.hashConcurrency ?? 2);
  }

  /** Starts watching the folder and hashes what it holds, in the background. */
  start(): void {
    this.refresh();
  }

  /** Every servable file with its size and SHA-256 (hashing those not seen before), by name. */
  async list(): Promise<DownloadsListing> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter(isServableName).sort();
    } catch (err) {
      if (isMissing(err)) return { dir: this.dir, exists: false, files: [] };
      const problem = `cannot read the downloads folder ${this.dir}: ${errorMessage(err)}`;
      this.logger.warn({ dir: this.dir, err: errorMessage(err) }, 'downloads: folder unreadable');
      return { dir: this.dir, exists: false, problem, files: [] };
    }
    this.watchFolder();
    const files: DownloadFile[] = [];
    const seen = new Set<string>();
    // One at a time: a folder of many files holds one descriptor open, not hundreds.
    for (const name of names) {
      const file = await this.open(name).catch((err: unknown) => {
        if (!this.closed) this.logger.warn({ file: name, err: errorMessage(err) }, 'downloads: file left out of the index');
        return undefined;
      });
      if (!file) continue;
      seen.add(file.key);
      await file.handle.close();
      files.push({ name: file.name, size: file.size, sha256: file.sha256, modified: file.modified });
    }
    // Hashes of files that are gone (or changed) are dropped; the cache holds the folder, no more.
    for (const key of this.digests.keys()) if (!seen.has(key)) this.digests.delete(key);
    return { dir: this.dir, exists: true, files };
  }

  /**
   * Opens a file for serving, with its SHA-256 (from the cache, or computed now from this
   * handle). Undefined when the name is not served: not a servable name, missing, not a
   * regular file, a symlink that leaves the folder, unreadable.
   */
  async open(name: string): Promise<(OpenDownload & { key: string }) | undefined> {
    for (let attempt = 1; ; attempt++) {
      const entry = await this.openEntry(name);
      if (!entry) return undefined;
      const { handle, stat } = entry;
      try {
        const sha256 = await this.digestOf(name, handle, stat);
        return { name, handle, size: Number(stat.size), sha256, modified: stat.mtime, key: identityOf(stat) };
      } catch (err) {
        await handle.close();
        if (err instanceof ReefError && err.code === 'REEF_DOWNLOAD_CHANGED' && attempt < OPEN_ATTEMPTS) continue;
        throw err;
      }
    }
  }

  /** Stops watching; a hash under way stops at its next chunk. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.settleTimer);
    this.watcher?.close();
    this.watcher = undefined;
    await this.refreshing;
  }

  private async openEntry(name: string): Promise<{ handle: FileHandle; stat: BigIntStats } | undefined> {
    if (!isServableName(name)) return undefined;
    let handle: FileHandle;
    try {
      const realDir = await realpath(this.dir);
      const real = await realpath(join(realDir, name));
      // A symlink may name another file of this folder (a "latest" alias), never anything
      // outside it, and never a file that is not served under its own name (a dotfile).
      if (dirname(real) !== realDir || !isServableName(basename(real))) {
        this.logger.debug({ file: name }, 'downloads: a symlink that leaves the folder is not served');
        return undefined;
      }
      handle = await open(real, OPEN_FLAGS);
    } catch (err) {
      if (isMissing(err) || isRefused(err)) {
        if (isRefused(err)) this.logger.warn({ file: name, err: errorMessage(err) }, 'downloads: file not served');
        return undefined;
      }
      throw err;
    }
    const stat = await handle.stat({ bigint: true });
    if (!stat.isFile()) {
      await handle.close();
      return undefined;
    }
    return { handle, stat };
  }

  /**
   * The SHA-256 of the file behind `handle`, whose fstat is `stat`. Concurrent callers for
   * the same file share one computation; the one that started it hashes through its own
   * handle, which it keeps open until the result is in (every caller awaits before closing).
   */
  private digestOf(name: string, handle: FileHandle, stat: BigIntStats): Promise<string> {
    const key = identityOf(stat);
    const known = this.digests.get(key);
    if (known !== undefined) return Promise.resolve(known);
    let pending = this.pending.get(key);
    if (!pending) {
      const started = Date.now();
      pending = this.hashing
        .run(() => sha256Of(handle, stat, () => this.closed))
        .then((sha256) => {
          this.digests.set(key, sha256);
          this.logger.info({ file: name, size: Number(stat.size), sha256, ms: Date.now() - started }, 'downloads: serving a new file');
          return sha256;
        })
        .finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    return pending;
  }

  private watchFolder(): void {
    if (this.watcher || this.closed) return;
    try {
      this.watcher = watch(this.dir, { persistent: false }, () => this.scheduleRefresh());
      this.watcher.on('error', (err) => {
        // The folder was removed or moved: watch again on the next listing that finds it.
        this.logger.debug({ dir: this.dir, err: errorMessage(err) }, 'downloads: stopped watching the folder');
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (err) {
      this.logger.debug({ dir: this.dir, err: errorMessage(err) }, 'downloads: cannot watch the folder; it is rescanned on each listing');
    }
  }

  /** Changes come in bursts (a copy writes many times): scan once they have settled. */
  private scheduleRefresh(): void {
    if (this.closed) return;
    clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => this.refresh(), this.settleMs);
    this.settleTimer.unref();
  }

  private refresh(): void {
    if (this.closed) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = this.list()
      .then(
        () => undefined,
        (err: unknown) => this.logger.warn({ dir: this.dir, err: errorMessage(err) }, 'downloads: background scan failed'),
      )
      .finally(() => {
        this.refreshing = undefined;
        if (this.refreshAgain) {
          this.refreshAgain = false;
          this.refresh();
        }
      });
  }
}

/** Which version of which file: equal keys mean the same bytes (barring a rewrite within one nanosecond tick). */
function identityOf(stat: BigIntStats): string {
  return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
}

/** Reads the handle with positional reads (1 MiB at a time), then checks the file did not change meanwhile. */
async function sha256Of(handle: FileHandle, stat: BigIntStats, stopped: () => boolean): Promise<string> {
  const size = Number(stat.size);
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(Math.max(1, Math.min(CHUNK_BYTES, size)));
  let position = 0;
  while (position < size) {
    if (stopped()) throw new ReefError('REEF_SHUTTING_DOWN', 'The server is stopping.');
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, size - position), position);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  const after = await handle.stat({ bigint: true });
  if (position !== size || identityOf(after) !== identityOf(stat)) {
    throw new ReefError('REEF_DOWNLOAD_CHANGED', 'The file changed while its SHA-256 was computed (is it still being copied in?). Try again in a moment.');
  }
  return hash.digest('hex');
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** ELOOP: a symlink swapped in after the check (O_NOFOLLOW), or a loop; EACCES/EPERM: not readable by the server. */
function isRefused(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ELOOP' || code === 'EACCES' || code === 'EPERM';
}

/** At most `limit` jobs at once; the rest wait in order. */
class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await job();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

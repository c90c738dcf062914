import type { Logger } from '../../logging.js';
import type { Store } from '../store/types.js';
import type { BlobStore } from './blobs.js';

/**
 * Uploaded files do not stay for ever: a file is deleted once it has been neither uploaded
 * nor pushed for the retention period and no unfinished task needs it. Temp files of
 * uploads cut off by a crash are swept too.
 */

export const DEFAULT_FILE_RETENTION_DAYS = 7;
/**
 * A temp file untouched this long belongs to no live upload (an upload that stops sending
 * is cut by the HTTPS idle timeout of 120 s), so any node of a cluster may remove it.
 */
export const ABANDONED_UPLOAD_MS = 60 * 60 * 1000;
const SWEEP_INTERVAL_MS = 60 * 60 * 1000;

/** SHA-256s of the files that queued or running push-file tasks will still send. */
export async function filesNeededByUnfinishedTasks(store: Store): Promise<Map<string, string[]>> {
  const needed = new Map<string, string[]>();
  for (const task of await store.listUnfinishedTasks()) {
    if (task.kind !== 'push-file') continue;
    const file = task.spec.file as { sha256?: unknown } | undefined;
    if (typeof file?.sha256 !== 'string') continue;
    needed.set(file.sha256, [...(needed.get(file.sha256) ?? []), task.id]);
  }
  return needed;
}

export interface RetentionSweep {
  deleted: string[];
  partialsRemoved: number;
}

/**
 * One pass: abandoned temp files, then files past retention that no unfinished task needs.
 * A task created for an expired file in the moment between reading the tasks and the
 * deletion fails its push with "no longer on the server; upload it again"; uploading
 * restarts a file's retention, so only a file unused for the whole period is at risk.
 */
export async function sweepUploads(blobs: BlobStore, store: Store, retentionMs: number, now = Date.now()): Promise<RetentionSweep> {
  const partialsRemoved = await blobs.sweepPartials(ABANDONED_UPLOAD_MS, now);
  const expired = (await blobs.list()).filter((blob) => now - blob.usedAt >= retentionMs);
  if (expired.length === 0) return { deleted: [], partialsRemoved };
  const needed = await filesNeededByUnfinishedTasks(store);
  const deleted: string[] = [];
  for (const blob of expired) {
    if (needed.has(blob.sha256)) continue;
    if (await blobs.delete(blob.sha256)) deleted.push(blob.sha256);
  }
  return { deleted, partialsRemoved };
}

export interface UploadJanitorOptions {
  blobs: BlobStore;
  store: Store;
  logger: Logger;
  /** Days an unused file is kept. Default DEFAULT_FILE_RETENTION_DAYS. */
  retentionDays?: number;
}

/** Runs sweepUploads now and then every hour until closed. */
export class UploadJanitor {
  readonly retentionMs: number;
  readonly #options: UploadJanitorOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();

  constructor(options: UploadJanitorOptions) {
    const days = options.retentionDays ?? DEFAULT_FILE_RETENTION_DAYS;
    if (!(days > 0)) throw new RangeError(`retentionDays must be above 0, got ${days}`);
    this.retentionMs = days * 24 * 60 * 60 * 1000;
    this.#options = options;
  }

  start(): void {
    this.#sweep();
    this.#timer = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  #sweep(): void {
    const { blobs, store, logger } = this.#options;
    this.#running = this.#running
      .then(() => sweepUploads(blobs, store, this.retentionMs))
      .then(
        ({ deleted, partialsRemoved }) => {
          if (deleted.length || partialsRemoved) logger.info({ deleted, partialsRemoved }, 'uploaded files past retention removed');
        },
        (err: unknown) => logger.warn({ err }, 'sweeping uploaded files failed; trying again in an hour'),
      );
  }
}

import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, futimesSync, mkdirSync, openSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, utimes, type FileHandle } from 'node:fs/promises';
import { syncDir } from '../../durable-fs.js';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ReefError } from '../../errors.js';

/**
 * Uploaded files, stored once each under their SHA-256 (content addressing: the name is
 * the checksum, so a finished blob is never rewritten and needs no lock). An upload is
 * written to a private temp file and renamed into place only once it is complete, synced
 * and verified, so a reader never sees a partial blob.
 *
 * A blob's mtime is when it was last uploaded or last read for a push: retention
 * (./retention.ts) counts from there.
 */
export interface BlobStore {
  readonly dir: string;
  /**
   * Streams `body` into the store. REEF_TOO_LARGE past `maxBytes`, REEF_HASH_MISMATCH when
   * `expectedSha256` differs, REEF_UPLOAD_INCOMPLETE when the body ends in an error or closes
   * early; in every failure the temp file is removed. `body` is paused, never destroyed,
   * so an HTTP caller can still drain it and answer.
   */
  put(body: Readable, options: PutOptions): Promise<BlobInfo>;
  /** null when no blob has this hash. */
  stat(sha256: string): Promise<{ size: number } | null>;
  /** Reads a blob from `offset` (resumed downloads) and marks it used now. REEF_NOT_FOUND when missing. */
  open(sha256: string, offset?: number): Readable;
  /** Every complete blob, with when it was last uploaded or pushed. */
  list(): Promise<StoredBlob[]>;
  /** false when no blob has this hash. */
  delete(sha256: string): Promise<boolean>;
  /**
   * Removes temp files of uploads not written to for `olderThanMs` (0: all of them):
   * leftovers of a crash, which nothing else would ever remove. Returns how many.
   */
  sweepPartials(olderThanMs: number, now?: number): Promise<number>;
}

export interface StoredBlob extends BlobInfo {
  /** Milliseconds since the epoch: the last upload of these bytes or the last push of them. */
  usedAt: number;
}

export interface PutOptions {
  maxBytes: number;
  /** Lowercase hex; the upload is refused unless its hash is exactly this. */
  expectedSha256?: string;
}

export interface BlobInfo {
  sha256: string;
  size: number;
}

const SHA256 = /^[0-9a-f]{64}$/;
const TEMP_PREFIX = '.upload-';
const TEMP_SUFFIX = '.partial';

/** Throws unless `sha256` is 64 lowercase hex digits, which also rules out any path trickery. */
export function checkSha256(sha256: unknown): string {
  if (typeof sha256 !== 'string' || !SHA256.test(sha256)) {
    const shown = typeof sha256 === 'string' ? `"${sha256.slice(0, 80)}"` : String(sha256);
    throw new ReefError('REEF_INVALID_ARGUMENT', `${shown} is not a SHA-256: expected 64 lowercase hexadecimal digits.`);
  }
  return sha256;
}

export function createBlobStore(dir: string): BlobStore {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pathOf = (sha256: string) => join(dir, checkSha256(sha256));

  return {
    dir,

    async put(body, options) {
      const expected = options.expectedSha256 === undefined ? undefined : checkSha256(options.expectedSha256);
      const { maxBytes } = options;
      // Dot-prefixed and suffixed, so it can never be mistaken for a blob name.
      const temp = join(dir, `${TEMP_PREFIX}${randomBytes(12).toString('hex')}${TEMP_SUFFIX}`);
      // Listen to the body at once (an error emitted while the file opens must not go
      // unheard); the first chunk waits for the file.
      const opening = mkdir(dir, { recursive: true, mode: 0o700 }).then(() => open(temp, 'wx', 0o600));
      opening.catch(() => undefined);
      let handle: FileHandle | undefined;
      const hash = createHash('sha256');
      let size = 0;
      let sha256: string;
      try {
        await consume(body, async (chunk) => {
          size += chunk.length;
          if (size > maxBytes) {
            throw new ReefError('REEF_TOO_LARGE', `The upload is larger than the limit of ${maxBytes} bytes.`);
          }
          hash.update(chunk);
          handle ??= await opening;
          for (let written = 0; written < chunk.length; ) {
            const { bytesWritten } = await handle.write(chunk, written, chunk.length - written);
            written += bytesWritten;
          }
        });
        handle ??= await opening;
        sha256 = hash.digest('hex');
        if (expected !== undefined && sha256 !== expected) {
          throw new ReefError(
            'REEF_HASH_MISMATCH',
            `The uploaded bytes have SHA-256 ${sha256}, but ${expected} was expected: the file changed or was damaged on the way. Upload it again.`,
          );
        }
        await handle.sync();
        await handle.close();
      } catch (err) {
        const opened = handle ?? (await opening.catch(() => undefined));
        await opened?.close().catch(() => undefined);
        await rm(temp, { force: true });
        throw err;
      }
      const final = join(dir, sha256);
      try {
        if (await exists(final)) {
          // Same hash, same bytes: keep the blob already there, its retention restarted.
          await rm(temp, { force: true });
          const now = new Date();
          await utimes(final, now, now);
        } else {
          await rename(temp, final);
          await syncDir(dir);
        }
      } catch (err) {
        await rm(temp, { force: true });
        throw err;
      }
      return { sha256, size };
    },

    async stat(sha256) {
      try {
        const s = await stat(pathOf(sha256));
        return s.isFile() ? { size: s.size } : null;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
    },

    open(sha256, offset = 0) {
      const path = pathOf(sha256);
      if (!Number.isSafeInteger(offset) || offset < 0) {
        throw new ReefError('REEF_INVALID_ARGUMENT', `offset must be a non-negative integer, got ${offset}.`);
      }
      let fd: number;
      try {
        fd = openSync(path, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new ReefError('REEF_NOT_FOUND', `No uploaded file has SHA-256 ${sha256}.`);
        }
        throw err;
      }
      const size = fstatSync(fd).size;
      if (offset > size) {
        closeSync(fd);
        throw new ReefError('REEF_INVALID_ARGUMENT', `offset ${offset} is past the end of file ${sha256} (${size} bytes).`);
      }
      // Pushed now: retention counts from here.
      const now = new Date();
      futimesSync(fd, now, now);
      return createReadStream('', { fd, start: offset });
    },

    async list() {
      const blobs: StoredBlob[] = [];
      for (const name of await readdir(dir)) {
        if (!SHA256.test(name)) continue;
        const s = await statOrNull(join(dir, name));
        if (s?.isFile()) blobs.push({ sha256: name, size: s.size, usedAt: s.mtimeMs });
      }
      return blobs;
    },

    async delete(sha256) {
      const path = pathOf(sha256);
      if (!(await statOrNull(path))?.isFile()) return false;
      await rm(path, { force: true });
      await syncDir(dir);
      return true;
    },

    async sweepPartials(olderThanMs, now = Date.now()) {
      let removed = 0;
      for (const name of await readdir(dir)) {
        if (!name.startsWith(TEMP_PREFIX) || !name.endsWith(TEMP_SUFFIX)) continue;
        const s = await statOrNull(join(dir, name));
        if (!s || now - s.mtimeMs < olderThanMs) continue;
        await rm(join(dir, name), { force: true });
        removed++;
      }
      return removed;
    },
  };
}

/**
 * Feeds each chunk of `body` to `onChunk`, one at a time. Settles on 'end', or rejects on
 * an error, an early close, or a throwing `onChunk`; in every case it stops listening and
 * leaves `body` paused (not destroyed).
 */
function consume(body: Readable, onChunk: (chunk: Buffer) => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let chain = Promise.resolve();
    const detach = () => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      body.off('aborted', onClose);
    };
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      detach();
      body.pause();
      reject(err);
    };
    const onData = (chunk: Buffer | string) => {
      body.pause();
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      chain = chain.then(() => onChunk(buffer)).then(() => {
        if (!settled) body.resume();
      }, fail);
    };
    const onEnd = () => {
      chain.then(() => {
        if (settled) return;
        settled = true;
        detach();
        resolve();
      }, fail);
    };
    const onError = (err: Error) => fail(new ReefError('REEF_UPLOAD_INCOMPLETE', `The upload failed before it ended: ${err.message}.`, { cause: err }));
    const onClose = () => {
      if (!body.readableEnded) fail(new ReefError('REEF_UPLOAD_INCOMPLETE', 'The upload was cut off before it ended.'));
    };
    if (body.readableEnded) return resolve();
    if (body.destroyed) return reject(new ReefError('REEF_UPLOAD_INCOMPLETE', 'The upload was cut off before it began.'));
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', onError);
    body.on('close', onClose);
    body.on('aborted', onClose);
    body.resume();
  });
}

async function exists(path: string): Promise<boolean> {
  return (await statOrNull(path)) !== null;
}

async function statOrNull(path: string) {
  try {
    return await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}


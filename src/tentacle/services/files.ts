/**
 * FileService: streamed, SHA-256 checked, resumable file transfers, confined to the
 * directories the Tentacle's owner allows.
 *
 * An upload to P is written to P.reef-partial next to it, with a sidecar
 * P.reef-partial.json naming the size and SHA-256 it is meant to reach. beginUpload()
 * tells the sender how many bytes of that partial already exist (0 when the sidecar is
 * for another file), upload() appends from exactly there, and at the full size the whole
 * file is hashed (the existing prefix first), fsynced and renamed into place atomically.
 * A body that ends early keeps the partial for the next attempt.
 *
 * Confinement: paths must be absolute; `..` is resolved first, then symlinks (realpath
 * of the nearest existing ancestor, and of the file itself: a symlink named as the
 * destination is judged by where it points too). The partial is opened with O_NOFOLLOW
 * so a planted symlink cannot redirect the write.
 *
 * Self-protection: the Tentacle's own files (src/tentacle/own-paths.ts: home, configuration,
 * keys, certificates, workspace, logs, its program) are refused with REEF_PATH_PROTECTED
 * whatever the allowed roots, "/" included, compared by real path on both sides.
 *
 * A file replaced by an upload keeps its mode (and, when the Tentacle runs as root, its
 * owner): deploying a new config over a 0600 file must not leave it world-readable.
 */
import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readFile, realpath, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ReefError } from '../../errors.js';
import type { Logger } from '../../logging.js';
import { syncDir, writeFileAtomic } from '../../durable-fs.js';
import { isWithin, type ProtectedPaths } from '../own-paths.js';

export interface FileServiceOptions {
  /** Absolute directories that transfers may read and write under (symlinks resolved). */
  allowedRoots: string[];
  /** The Tentacle's own files (tentacleOwnPaths), refused whatever allowedRoots say. */
  protect?: ProtectedPaths;
  logger: Logger;
}

export interface UploadTarget {
  path: string;
  size: number;
  /** 64 hexadecimal digits, any case. */
  sha256: string;
}

export interface UploadRequest extends UploadTarget {
  /** Must equal the bytes already received, as beginUpload() reported. */
  offset: number;
}

export interface UploadResult {
  path: string;
  size: number;
  sha256: string;
}

export interface DownloadRequest {
  path: string;
  /** Start the body here, to resume a cut download. Default 0. */
  offset?: number;
  /** Hash the whole file first and return its SHA-256 (reads the file twice). */
  sha256?: boolean;
}

export interface DownloadResult {
  path: string;
  size: number;
  offset: number;
  sha256?: string;
  /** Bytes [offset, size) of the file as it was when opened. */
  body: Readable;
}

export interface FileStat {
  path: string;
  exists: boolean;
  type?: 'file' | 'directory' | 'other';
  size?: number;
  modifiedAt?: string;
}

const SHA256 = /^[0-9a-fA-F]{64}$/;
const PARTIAL = '.reef-partial';
const SIDECAR = '.reef-partial.json';
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;

interface Sidecar {
  size: number;
  sha256: string;
}

export class FileService {
  private readonly configuredRoots: string[];
  private readonly protect: ProtectedPaths;
  private readonly logger: Logger;
  private roots?: Promise<string[]>;
  private readonly busy = new Set<string>();

  constructor(options: FileServiceOptions) {
    this.configuredRoots = options.allowedRoots.map((root) => {
      if (!path.isAbsolute(root)) throw new ReefError('REEF_CONFIG_INVALID', `Allowed root "${root}" must be an absolute path.`);
      return path.resolve(root);
    });
    this.protect = options.protect ?? { always: [], trees: [], openings: [] };
    this.logger = options.logger;
  }

  /** Where to resume: the bytes of a matching partial upload already on disk (0 if none). */
  async beginUpload(request: UploadTarget): Promise<{ offset: number }> {
    const { size, sha256 } = validTarget(request);
    const target = await this.resolveForWrite(request.path);
    return this.exclusive(target, async () => ({ offset: await this.preparePartial(target, size, sha256) }));
  }

  /**
   * Appends `body` to the partial upload from `offset`. At `size` bytes the file is
   * verified and moved into place; a body that ends early (or fails) keeps the partial
   * and rejects with REEF_UPLOAD_INCOMPLETE naming the offset to resume from.
   */
  async upload(request: UploadRequest, body: Readable): Promise<UploadResult> {
    const { size, sha256 } = validTarget(request);
    const { offset } = request;
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new ReefError('REEF_BAD_OFFSET', `Upload offset must be a whole number >= 0, got ${String(offset)}.`);
    }
    const target = await this.resolveForWrite(request.path);
    return this.exclusive(target, async () => {
      const current = await this.preparePartial(target, size, sha256);
      if (offset !== current) {
        throw new ReefError(
          'REEF_BAD_OFFSET',
          `The partial upload of ${target} holds ${current} bytes, but this upload starts at offset ${offset}: ` +
            `send the file from offset ${current} (beginUpload reports it).`,
        );
      }
      const partial = target + PARTIAL;
      const hash = createHash('sha256');
      if (current > 0) {
        const prefix = await open(partial, constants.O_RDONLY | NOFOLLOW);
        try {
          await hashInto(hash, prefix, current);
        } finally {
          await prefix.close();
        }
      }

      let received = current;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          if (received + chunk.length > size) {
            callback(tooLarge(target, size));
            return;
          }
          received += chunk.length;
          hash.update(chunk);
          callback(null, chunk);
        },
      });
      // O_NOFOLLOW: a symlink planted as the partial must not redirect the write.
      const fh = await open(partial, constants.O_WRONLY | constants.O_APPEND | NOFOLLOW);
      let failure: unknown;
      try {
        await pipeline(body, counter, appendTo(fh));
        if (received === size) await keepModeOf(target, fh);
      } catch (err) {
        failure = err;
      } finally {
        await fh.sync().catch(() => undefined); // also after a failure: the offset to resume from must hold
        await fh.close();
      }

      if (failure instanceof ReefError && failure.code === 'REEF_UPLOAD_TOO_LARGE') {
        await discardPartial(target);
        throw failure;
      }
      if (failure !== undefined || received < size) {
        const kept = (await lstat(partial)).size;
        throw new ReefError(
          'REEF_UPLOAD_INCOMPLETE',
          `The upload of ${target} stopped after ${kept} of ${size} bytes` +
            (failure !== undefined ? ` (${failure instanceof Error ? failure.message : String(failure)})` : '') +
            `; the partial file is kept: resume from offset ${kept}.`,
          { cause: failure },
        );
      }
      const digest = hash.digest('hex');
      if (digest !== sha256) {
        await discardPartial(target);
        throw new ReefError(
          'REEF_HASH_MISMATCH',
          `The uploaded ${target} has SHA-256 ${digest}, but ${sha256} was expected; the received bytes were discarded. ` +
            `Check the source file and send it again from offset 0.`,
        );
      }
      await rename(partial, target);
      await syncDir(path.dirname(target));
      await rm(target + SIDECAR, { force: true });
      this.logger.info({ path: target, size }, 'file uploaded');
      return { path: target, size, sha256: digest };
    });
  }

  async download(request: DownloadRequest): Promise<DownloadResult> {
    const offset = request.offset ?? 0;
    const file = await this.resolveExisting(request.path);
    const fh = await open(file, constants.O_RDONLY | NOFOLLOW);
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new ReefError('REEF_NOT_A_FILE', `${file} is not a regular file, so it cannot be downloaded.`);
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > st.size) {
        throw new ReefError('REEF_BAD_OFFSET', `Download offset must be a whole number from 0 to ${st.size} (the file's size), got ${String(offset)}.`);
      }
      const sha256 = request.sha256 ? await hashRange(fh, st.size) : undefined;
      const result = { path: file, size: st.size, offset, ...(sha256 !== undefined ? { sha256 } : {}) };
      if (offset === st.size) {
        await fh.close();
        return { ...result, body: Readable.from([]) };
      }
      // The body owns the handle from here and closes it when done or destroyed.
      return { ...result, body: fh.createReadStream({ start: offset, end: st.size - 1 }) };
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  async stat(request: { path: string }): Promise<FileStat> {
    const { resolved, exists } = await this.resolve(request.path);
    if (!exists) {
      await this.assertAllowed(request.path, resolved);
      return { path: resolved, exists: false };
    }
    const file = await this.resolveExisting(request.path);
    const st = await lstat(file);
    return {
      path: file,
      exists: true,
      type: st.isFile() ? 'file' : st.isDirectory() ? 'directory' : 'other',
      size: st.size,
      modifiedAt: st.mtime.toISOString(),
    };
  }

  /** Returns the bytes of a partial matching (size, sha256), starting a new one otherwise. */
  private async preparePartial(target: string, size: number, sha256: string): Promise<number> {
    await mkdir(path.dirname(target), { recursive: true });
    // mkdir followed whatever is there now: check again that it stayed inside the roots.
    await this.resolveForWrite(target);
    const existing = await lstatOrNull(target);
    if (existing?.isDirectory()) {
      throw new ReefError('REEF_NOT_A_FILE', `${target} is a directory; an upload must name a file.`);
    }
    const partial = await lstatOrNull(target + PARTIAL);
    const sidecar = await readSidecar(target);
    if (partial?.isFile() && sidecar?.size === size && sidecar.sha256 === sha256 && partial.size <= size) {
      return partial.size;
    }
    await discardPartial(target);
    await writeFileAtomic(target + SIDECAR, JSON.stringify({ size, sha256 } satisfies Sidecar));
    const fh = await open(target + PARTIAL, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW);
    await fh.close();
    return 0;
  }

  private async exclusive<T>(target: string, work: () => Promise<T>): Promise<T> {
    if (this.busy.has(target)) {
      throw new ReefError('REEF_UPLOAD_BUSY', `Another upload to ${target} is in progress on this Tentacle; wait for it to end, then resume.`);
    }
    this.busy.add(target);
    try {
      return await work();
    } finally {
      this.busy.delete(target);
    }
  }

  /** The path to write: its existing ancestors' symlinks resolved, the name itself kept. */
  private async resolveForWrite(input: string): Promise<string> {
    const absolute = absolutePath(input);
    const parent = (await this.resolve(path.dirname(absolute))).resolved;
    const target = path.join(parent, path.basename(absolute));
    await this.assertAllowed(input, target, true);
    // A symlink named as the destination: where it points must be allowed as well.
    const pointsTo = (await this.resolve(absolute)).resolved;
    if (pointsTo !== target) await this.assertAllowed(input, pointsTo, true);
    return target;
  }

  /** The real path of an existing file, inside the roots; REEF_FILE_NOT_FOUND otherwise. */
  private async resolveExisting(input: string): Promise<string> {
    const { resolved, exists } = await this.resolve(input);
    if (!exists) {
      await this.assertAllowed(input, resolved);
      throw new ReefError('REEF_FILE_NOT_FOUND', `${absolutePath(input)} does not exist on this Tentacle.`);
    }
    await this.assertAllowed(input, resolved);
    return resolved;
  }

  /** realpath of the nearest existing ancestor, with the missing rest appended. */
  private async resolve(input: string): Promise<{ resolved: string; exists: boolean }> {
    let existing = absolutePath(input);
    const missing: string[] = [];
    for (;;) {
      try {
        const real = await realpath(existing);
        return { resolved: path.join(real, ...missing), exists: missing.length === 0 };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const up = path.dirname(existing);
        if ((code !== 'ENOENT' && code !== 'ENOTDIR') || up === existing) throw err;
        missing.unshift(path.basename(existing));
        existing = up;
      }
    }
  }

  private async assertAllowed(input: string, resolved: string, mustBeBelow = false): Promise<void> {
    await this.assertNotOwn(input, resolved);
    const roots = await this.realRoots();
    const ok = roots.some((root) => {
      const rel = path.relative(root, resolved);
      if (rel === '') return !mustBeBelow;
      return rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
    });
    if (ok) return;
    const shown = absolutePath(input) === resolved ? resolved : `${input} (which resolves to ${resolved})`;
    throw new ReefError(
      'REEF_PATH_NOT_ALLOWED',
      `${shown} is not inside a directory this Tentacle allows file transfers in: ` +
        `${this.configuredRoots.length > 0 ? this.configuredRoots.join(', ') : '(none configured)'}. ` +
        `Use a path under one of them, or add a root to the Tentacle's configuration.`,
    );
  }

  /** REEF_PATH_PROTECTED when `resolved` (a real path) or `input` as written is one of the Tentacle's own files. */
  private async assertNotOwn(input: string, resolved: string): Promise<void> {
    const { always, trees, openings } = this.protect;
    // Real paths each time (cheap, and a protected file may appear after start), the lexical ones as well.
    const real = async (paths: string[]) => [...paths, ...(await Promise.all(paths.map(async (p) => (await this.resolve(p)).resolved)))];
    const candidates = [absolutePath(input), resolved];
    const inside = (list: string[]) => candidates.some((c) => list.some((p) => isWithin(c, p)));
    const [realAlways, realTrees, realOpenings] = await Promise.all([real(always), real(trees), real(openings)]);
    const own = inside(realAlways) || (inside(realTrees) && !candidates.every((c) => realOpenings.some((o) => isWithin(c, o))));
    if (!own) return;
    const shown = absolutePath(input) === resolved ? resolved : `${input} (which resolves to ${resolved})`;
    throw new ReefError(
      'REEF_PATH_PROTECTED',
      `${shown} is one of this Tentacle's own files (its home, configuration, keys, certificates, workspace, logs or program), ` +
        `which file transfers may never read or write, whatever the allowed roots. ` +
        `Choose a destination outside them${openings.length > 0 ? `, e.g. under ${openings[0]}` : ''}.`,
    );
  }

  private realRoots(): Promise<string[]> {
    this.roots ??= Promise.all(
      this.configuredRoots.map(async (root) => {
        try {
          return await realpath(root);
        } catch (err) {
          this.logger.warn({ root, err }, 'allowed root for file transfers does not exist; ignoring it');
          return null;
        }
      }),
    ).then((roots) => roots.filter((root): root is string => root !== null));
    return this.roots;
  }
}

function absolutePath(input: unknown): string {
  if (typeof input !== 'string' || !path.isAbsolute(input) || input.includes('\0')) {
    throw new ReefError('REEF_INVALID_ARGUMENT', `${JSON.stringify(input)} is not an absolute path; file transfers need one.`);
  }
  return path.resolve(input);
}

function validTarget(request: UploadTarget): Sidecar {
  if (!Number.isSafeInteger(request.size) || request.size < 0) {
    throw new ReefError('REEF_INVALID_ARGUMENT', `Upload size must be a whole number of bytes >= 0, got ${String(request.size)}.`);
  }
  if (typeof request.sha256 !== 'string' || !SHA256.test(request.sha256)) {
    throw new ReefError('REEF_INVALID_ARGUMENT', `Upload sha256 must be 64 hexadecimal digits, got ${JSON.stringify(request.sha256)}.`);
  }
  return { size: request.size, sha256: request.sha256.toLowerCase() };
}

function tooLarge(target: string, size: number): ReefError {
  return new ReefError(
    'REEF_UPLOAD_TOO_LARGE',
    `The upload of ${target} sent more than the announced ${size} bytes; the received bytes were discarded. Send it again with the right size.`,
  );
}

async function hashRange(fh: FileHandle, size: number): Promise<string> {
  const hash = createHash('sha256');
  await hashInto(hash, fh, size);
  return hash.digest('hex');
}

/** Feeds bytes [0, size) of `fh` to `hash`. (Not a stream: a FileHandle stream left open would keep fh.close() waiting.) */
async function hashInto(hash: Hash, fh: FileHandle, size: number): Promise<void> {
  const chunk = Buffer.allocUnsafe(256 * 1024);
  for (let pos = 0; pos < size; ) {
    const { bytesRead } = await fh.read(chunk, 0, Math.min(chunk.length, size - pos), pos);
    if (bytesRead === 0) throw new Error(`file shrank while being hashed (at ${pos} of ${size} bytes)`);
    hash.update(chunk.subarray(0, bytesRead));
    pos += bytesRead;
  }
}

/** A Writable onto a handle we keep owning (fs streams on a FileHandle would close or pin it). */
/**
 * Appends what is written to `fh`. Bodies arrive in HTTP/2 DATA frames of 16 KiB; the
 * chunks that queue up while one write is in flight go down as one writev, so a large
 * upload costs a few thousand file writes instead of one per frame.
 */
function appendTo(fh: FileHandle): Writable {
  return new Writable({
    highWaterMark: 1024 * 1024,
    writev(chunks, callback) {
      fh.writev(chunks.map(({ chunk }) => chunk as Buffer)).then(() => callback(), callback);
    },
  });
}

/** Gives the complete partial the mode (and, as root, the owner) of the file it is about to replace. */
async function keepModeOf(target: string, partial: FileHandle): Promise<void> {
  const existing = await lstatOrNull(target);
  if (!existing?.isFile()) return;
  await partial.chmod(existing.mode & 0o7777);
  if (process.getuid?.() === 0) await partial.chown(existing.uid, existing.gid);
}

async function readSidecar(target: string): Promise<Sidecar | null> {
  try {
    const value = JSON.parse(await readFile(target + SIDECAR, 'utf8')) as Partial<Sidecar>;
    return typeof value.size === 'number' && typeof value.sha256 === 'string' ? { size: value.size, sha256: value.sha256 } : null;
  } catch {
    return null; // missing or unreadable: start over
  }
}

async function discardPartial(target: string): Promise<void> {
  await rm(target + PARTIAL, { force: true });
  await rm(target + SIDECAR, { force: true });
}

async function lstatOrNull(file: string) {
  try {
    return await lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

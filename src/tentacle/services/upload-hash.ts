/**
 * The SHA-256 of an upload, computed where it does not slow the upload down.
 *
 * The Tentacle's main thread decrypts TLS, runs HTTP/2 and hands the body to the file
 * writes (which already run on libuv's thread pool); hashing it there as well made the
 * hash (about 0.7 s of CPU per GiB) the largest single cost of a push on that thread
 * (docs/performance.md, "transfer"). A large upload therefore hashes on a worker thread:
 * the main thread only copies each chunk into one of a few slabs of shared memory, and
 * the worker hashes a slab while the next one fills. When every slab waits to be hashed,
 * `update` waits too, so the body stream (and HTTP/2 flow control behind it) slows to
 * the hash's pace instead of buffering without bound.
 *
 * Small uploads hash inline: a worker thread costs some tens of milliseconds to start
 * and a few MiB while it lives.
 */
import { createHash, type Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** Uploads with at least this many bytes still to come hash on a worker thread. */
export const OFF_THREAD_HASH_BYTES = 16 * 1024 * 1024;
const SLAB_BYTES = 1024 * 1024;
const SLABS = 4;

export interface UploadHash {
  /** Adds `chunk`; when it returns a promise, wait for it before the next update (the chunk may be reused once it settles). */
  update(chunk: Buffer): void | Promise<void>;
  /** The hex digest of everything added; the hash is finished (and its thread gone) after. */
  digest(): Promise<string>;
  /** Stops a hash that will not be finished (the upload failed); harmless after digest(). */
  close(): void;
}

/** An inline hash for `remaining` bytes below OFF_THREAD_HASH_BYTES, a worker thread's otherwise. */
export function uploadHash(remaining: number): UploadHash {
  return remaining >= OFF_THREAD_HASH_BYTES ? new OffThreadHash() : inlineHash();
}

function inlineHash(): UploadHash {
  const hash: Hash = createHash('sha256');
  return {
    update: (chunk) => void hash.update(chunk),
    digest: async () => hash.digest('hex'),
    close: () => undefined,
  };
}

/**
 * The worker's whole program: CommonJS source evaluated in the thread, so it needs no file
 * of its own next to the compiled code or inside the single executable Tentacle.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const hash = require('node:crypto').createHash('sha256');
const slabs = Buffer.from(workerData.memory);
parentPort.on('message', (message) => {
  if (message.slab === undefined) return parentPort.postMessage({ digest: hash.digest('hex') });
  const start = message.slab * workerData.slabBytes;
  hash.update(slabs.subarray(start, start + message.length));
  parentPort.postMessage({ slab: message.slab });
});
`;

export class OffThreadHash implements UploadHash {
  private readonly memory = new SharedArrayBuffer(SLAB_BYTES * SLABS);
  private readonly slabs = Buffer.from(this.memory);
  private readonly worker: Worker;
  /** Slabs neither being filled nor being hashed. */
  private readonly free: number[] = [];
  private filling: number;
  private filled = 0;
  private waitingForSlab: (() => void) | undefined;
  private waitingForDigest: { resolve(hex: string): void; reject(err: Error): void } | undefined;
  private failure: Error | undefined;

  constructor() {
    // execArgv: [] so that the thread does not load what the main one was started with (tsx in development).
    this.worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { memory: this.memory, slabBytes: SLAB_BYTES } });
    this.worker.unref();
    for (let slab = 1; slab < SLABS; slab++) this.free.push(slab);
    this.filling = 0;
    this.worker.on('message', (message: { slab?: number; digest?: string }) => {
      if (message.digest !== undefined) return this.waitingForDigest?.resolve(message.digest);
      this.free.push(message.slab!);
      this.wake();
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', () => this.fail(new Error('the upload hash thread ended before its digest')));
  }

  update(chunk: Buffer): void | Promise<void> {
    let offset = this.copy(chunk, 0);
    if (offset === chunk.length) return;
    return (async () => {
      while (offset < chunk.length) {
        await this.nextSlab();
        offset = this.copy(chunk, offset);
      }
    })();
  }

  async digest(): Promise<string> {
    if (this.failure) throw this.failure;
    if (this.filled > 0) this.send();
    const hex = new Promise<string>((resolve, reject) => {
      this.waitingForDigest = { resolve, reject };
    });
    this.worker.postMessage({});
    try {
      return await hex;
    } finally {
      this.close();
    }
  }

  close(): void {
    this.failure ??= new Error('the upload hash was closed');
    void this.worker.terminate();
  }

  /** Copies what fits of chunk[offset..] into the slab being filled, sending it once full; returns the new offset. */
  private copy(chunk: Buffer, offset: number): number {
    if (this.failure) throw this.failure;
    while (offset < chunk.length && this.filling >= 0) {
      const n = chunk.copy(this.slabs, this.filling * SLAB_BYTES + this.filled, offset, Math.min(chunk.length, offset + SLAB_BYTES - this.filled));
      offset += n;
      this.filled += n;
      if (this.filled === SLAB_BYTES) this.send();
    }
    return offset;
  }

  /** Hands the slab being filled to the worker and takes a free one (-1: none free yet). */
  private send(): void {
    this.worker.postMessage({ slab: this.filling, length: this.filled });
    this.filled = 0;
    this.filling = this.free.shift() ?? -1;
  }

  private nextSlab(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.filling < 0 && this.free.length > 0) this.filling = this.free.shift()!;
    if (this.filling >= 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waitingForSlab = () => {
        if (this.failure) return reject(this.failure);
        this.filling = this.free.shift()!;
        resolve();
      };
    });
  }

  private wake(): void {
    const waiting = this.waitingForSlab;
    this.waitingForSlab = undefined;
    waiting?.();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.wake();
    this.waitingForDigest?.reject(this.failure);
  }
}

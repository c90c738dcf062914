import { Worker } from 'node:worker_threads';
import type { ScryptOptions } from 'node:crypto';
import { ReefError } from '../../errors.js';

/**
 * scrypt on a few dedicated worker threads, with a bounded queue.
 *
 * Why not crypto.scrypt: it runs on libuv's threadpool (4 threads), the same one every
 * fs call uses. A burst of sign-ins (32 MiB and ~100 ms each) filled it and an
 * authenticated upload waited minutes for its file writes. Here each worker runs
 * scryptSync, so hashing never touches libuv's pool; at most `workers` hashes run at
 * once, at most `maxQueued` wait, and anything beyond is refused at once with
 * REEF_BUSY (the HTTP layers answer 429 with Retry-After) instead of piling up.
 */

export interface ScryptJob {
  secret: string;
  salt: Buffer;
  keyLength: number;
  params: Required<Pick<ScryptOptions, 'N' | 'r' | 'p'>>;
}

export interface ScryptPoolOptions {
  /** Hashes running at once, each on its own thread. Default 2. */
  workers?: number;
  /** Hashes waiting for a thread; more are refused with REEF_BUSY. Default 8. */
  maxQueued?: number;
}

export interface ScryptPoolStats {
  running: number;
  queued: number;
  /** Hashes computed since the pool was made: the evaluations the rate limits must bound. */
  evaluated: number;
  /** Jobs refused because the queue was full. */
  refused: number;
}

/** The pool was full: try again after `retryAfterSeconds`. */
export class HashingBusyError extends ReefError {
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number) {
    super('REEF_BUSY', `The server is checking too many passwords and keys at once; try again in ${retryAfterSeconds} s.`);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

// Plain CommonJS run with `eval`, so the worker loads no file: it works alike from dist/,
// from the sources under tsx (tests; a worker would not inherit the loader) and in a bundle.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { scryptSync } = require('node:crypto');
parentPort.on('message', ({ id, secret, salt, keyLength, params }) => {
  try {
    parentPort.postMessage({ id, hash: scryptSync(secret, salt, keyLength, params) });
  } catch (err) {
    parentPort.postMessage({ id, error: String((err && err.message) || err) });
  }
});
`;

interface Pending {
  job: ScryptJob;
  resolve: (hash: Buffer) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  current: (Pending & { id: number }) | null;
}

/** Rough cost of one hash, for the Retry-After estimate. */
const TYPICAL_HASH_MS = 150;

export class ScryptPool {
  readonly workers: number;
  readonly maxQueued: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Pending[] = [];
  #nextId = 0;
  #evaluated = 0;
  #refused = 0;

  constructor(options: ScryptPoolOptions = {}) {
    this.workers = options.workers ?? 2;
    this.maxQueued = options.maxQueued ?? 8;
    if (!Number.isInteger(this.workers) || this.workers < 1) throw new RangeError(`workers must be a whole number >= 1, got ${this.workers}`);
    if (!Number.isInteger(this.maxQueued) || this.maxQueued < 0) throw new RangeError(`maxQueued must be a whole number >= 0, got ${this.maxQueued}`);
  }

  stats(): ScryptPoolStats {
    return { running: this.#slots.filter((s) => s.current).length, queued: this.#queue.length, evaluated: this.#evaluated, refused: this.#refused };
  }

  /**
   * The derived key. Rejects at once (synchronously decided) with HashingBusyError when
   * every thread is busy and the queue is full.
   */
  hash(job: ScryptJob): Promise<Buffer> {
    const idle = this.#idleSlot();
    if (!idle && this.#queue.length >= this.maxQueued) {
      this.#refused++;
      const waves = Math.ceil((this.#queue.length + this.workers) / this.workers);
      return Promise.reject(new HashingBusyError(Math.max(1, Math.ceil((waves * TYPICAL_HASH_MS) / 1000))));
    }
    return new Promise<Buffer>((resolve, reject) => {
      const pending: Pending = { job, resolve, reject };
      if (idle) this.#start(idle, pending);
      else this.#queue.push(pending);
    });
  }

  /** Stops the threads; queued and running jobs are rejected. */
  async close(): Promise<void> {
    const stopped = new ReefError('REEF_SHUTTING_DOWN', 'The password hashing threads were stopped.');
    for (const pending of this.#queue.splice(0)) pending.reject(stopped);
    const slots = this.#slots.splice(0);
    for (const slot of slots) slot.current?.reject(stopped);
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
  }

  #idleSlot(): Slot | undefined {
    const idle = this.#slots.find((s) => !s.current);
    if (idle) return idle;
    if (this.#slots.length >= this.workers) return undefined;
    return this.#spawn();
  }

  #spawn(): Slot {
    // execArgv [] keeps the parent's loaders (tsx) out of a thread that needs none.
    const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [] });
    const slot: Slot = { worker, current: null };
    // Idle threads must not keep the process alive.
    worker.unref();
    worker.on('message', (message: { id: number; hash?: Uint8Array; error?: string }) => {
      const pending = slot.current;
      if (!pending || pending.id !== message.id) return;
      slot.current = null;
      worker.unref();
      this.#evaluated++;
      if (message.hash) pending.resolve(Buffer.from(message.hash.buffer, message.hash.byteOffset, message.hash.byteLength));
      else pending.reject(new Error(`scrypt failed: ${message.error ?? 'no result'}`));
      this.#next(slot);
    });
    const lost = (err: Error) => {
      const index = this.#slots.indexOf(slot);
      if (index < 0) return;
      this.#slots.splice(index, 1);
      slot.current?.reject(new Error(`a password hashing thread stopped: ${err.message}`, { cause: err }));
      slot.current = null;
      // Queued jobs get a fresh thread.
      const pending = this.#queue.shift();
      if (pending) {
        const replacement = this.#idleSlot();
        if (replacement) this.#start(replacement, pending);
        else this.#queue.unshift(pending);
      }
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`exit code ${code}`)));
    this.#slots.push(slot);
    return slot;
  }

  #start(slot: Slot, pending: Pending): void {
    const id = ++this.#nextId;
    slot.current = { ...pending, id };
    // A thread with work keeps the process alive until the answer is in.
    slot.worker.ref();
    const { secret, salt, keyLength, params } = pending.job;
    // scrypt needs 128·N·r bytes; Node's default cap (32 MiB) would refuse N=2^15, r=8.
    slot.worker.postMessage({ id, secret, salt, keyLength, params: { ...params, maxmem: 256 * params.N * params.r } });
  }

  #next(slot: Slot): void {
    const pending = this.#queue.shift();
    if (pending) this.#start(slot, pending);
  }
}

let shared: ScryptPool | undefined;

/** The process's pool: passwords and (legacy) API keys share its threads and its bound. */
export function sharedScryptPool(): ScryptPool {
  shared ??= new ScryptPool();
  return shared;
}

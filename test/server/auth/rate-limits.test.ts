/**
 * Limits that hold under concurrency: attempts are counted before the work, hashing is
 * bounded and runs off libuv's threadpool. Hash evaluations are counted where they happen
 * (the scrypt pool's counter, the store's credential reads), not in a stand-in.
 */
import assert from 'node:assert/strict';
import { randomBytes, scryptSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createApiKey } from '../../../src/server/auth/apikeys.js';
import { FailureLimiter } from '../../../src/server/auth/failure-limiter.js';
import { RequestLimiter } from '../../../src/server/auth/request-limiter.js';
import { HashingBusyError, ScryptPool, sharedScryptPool } from '../../../src/server/auth/scrypt-pool.js';
import { HttpError } from '../../../src/server/http/errors.js';
import { authenticate } from '../../../src/server/http/auth.js';
import type { Store } from '../../../src/server/store/types.js';
import { tempStore, type SqliteTempStore } from '../store/helpers.js';

/** What authenticate() reads of a request. */
function requestFrom(address: string, apiKey: string): IncomingMessage {
  return { headers: { 'x-reef-apikey': apiKey }, socket: { remoteAddress: address } } as unknown as IncomingMessage;
}

/** The store, counting credential reads: every key check that is not cached makes one. */
function counting(store: Store): { store: Store; reads: () => number } {
  let reads = 0;
  const proxy = new Proxy(store, {
    get(target, prop) {
      if (prop === 'getApiKeyCredential') {
        return (prefix: string) => {
          reads++;
          return target.getApiKeyCredential(prefix);
        };
      }
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: proxy, reads: () => reads };
}

/** `count` different wrong keys that share `key`'s (public) prefix. */
function guessesFor(key: string, count: number): string[] {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  return Array.from({ length: count }, (_, i) => key.slice(0, 12) + alphabet[i % 32]! + alphabet[Math.floor(i / 32) % 32]! + 'Q'.repeat(22));
}

describe('failure limiter', () => {
  it('reserves before the work: parallel attempts past the limit are refused at once', () => {
    const limiter = new FailureLimiter({ maxFailures: 3, now: () => 1000 });
    const admitted = Array.from({ length: 10 }, () => limiter.admit('10.0.0.1'));
    assert.equal(admitted.filter((a) => a.admitted).length, 3);
    const refused = admitted.find((a) => !a.admitted);
    assert.ok(refused && !refused.admitted && refused.retryAfterSeconds >= 1);
    assert.equal(limiter.admit('10.0.0.2').admitted, true, 'another address has its own count');
  });

  it('gives a slot back on success or withdrawal, keeps it as a failure for the window otherwise', () => {
    let now = 0;
    const limiter = new FailureLimiter({ maxFailures: 2, windowMs: 60_000, now: () => now });
    const slot = (a: ReturnType<FailureLimiter['admit']>) => (a.admitted ? a.slot : assert.fail('refused'));
    slot(limiter.admit('a')).succeeded();
    slot(limiter.admit('a')).withdrawn();
    const failing = slot(limiter.admit('a'));
    failing.failed();
    failing.failed(); // a second end is ignored
    assert.equal(limiter.blockedFor('a'), 0);
    slot(limiter.admit('a')).failed();
    assert.equal(limiter.blockedFor('a'), 60);
    const refused = limiter.admit('a');
    assert.ok(!refused.admitted && refused.retryAfterSeconds === 60);
    now = 60_001;
    assert.equal(limiter.admit('a').admitted, true, 'free again once the failures are a window old');
  });
});

describe('scrypt pool', () => {
  const params = { N: 2 ** 15, r: 8, p: 1 };
  let pool: ScryptPool;
  before(() => {
    pool = new ScryptPool({ workers: 2, maxQueued: 4 });
  });
  after(() => pool.close());

  it('hashes like crypto.scrypt, at most `workers` at once, and refuses past its queue with Retry-After', async () => {
    const salt = randomBytes(16);
    const jobs = Array.from({ length: 9 }, (_, i) => pool.hash({ secret: `password ${i}`, salt, keyLength: 32, params }));
    const settled = await Promise.allSettled(jobs);
    const refused = settled.filter((s) => s.status === 'rejected');
    assert.equal(refused.length, 3, '2 running + 4 queued, the other 3 refused');
    for (const r of refused) {
      const err = (r as PromiseRejectedResult).reason as HashingBusyError;
      assert.ok(err instanceof HashingBusyError && err.code === 'REEF_BUSY' && err.retryAfterSeconds >= 1);
    }
    const first = settled[0] as PromiseFulfilledResult<Buffer>;
    assert.deepEqual(first.value, scryptSync('password 0', salt, 32, { ...params, maxmem: 64 * 1024 * 1024 }));
    assert.deepEqual(pool.stats(), { running: 0, queued: 0, evaluated: 6, refused: 3 });
  });

  it('leaves libuv\'s threadpool to file I/O: a read finishes while every hashing thread is busy', async () => {
    const dir = await tempStore();
    const file = join(dir.dir, 'small.txt');
    await writeFile(file, 'still served');
    const salt = randomBytes(16);
    const hashing = Array.from({ length: 6 }, (_, i) => pool.hash({ secret: `p${i}`, salt, keyLength: 32, params: { N: 2 ** 16, r: 8, p: 1 } }));
    // More hashes than libuv has threads (4): with crypto.scrypt this read would queue behind them.
    assert.equal(await readFile(file, 'utf8'), 'still served');
    const during = pool.stats();
    assert.ok(during.running === 2 && during.queued > 0, `the read finished while hashing was still going on (${JSON.stringify(during)})`);
    await Promise.all(hashing);
    await dir.cleanup();
  });
});

describe('API key guesses under concurrency', () => {
  let t: SqliteTempStore;
  before(async () => {
    t = await tempStore();
  });
  after(() => t.cleanup());

  it('300 parallel guesses at a real prefix are evaluated no more than the limit (20); the rest get 429 with Retry-After', async () => {
    const { key } = await createApiKey(t.store, 'real');
    const { store, reads } = counting(t.store);
    const limiter = new FailureLimiter({ maxFailures: 20 });
    const results = await Promise.allSettled(guessesFor(key, 300).map((guess) => authenticate(requestFrom('203.0.113.7', guess), store, limiter)));
    const statuses = results.map((r) => (r.status === 'rejected' && r.reason instanceof HttpError ? r.reason.status : 0));
    assert.equal(statuses.filter((s) => s === 401).length, 20);
    assert.equal(statuses.filter((s) => s === 429).length, 280);
    assert.equal(reads(), 20, 'credentials looked up (and hashed) 20 times');
    const limited = results.find((r) => r.status === 'rejected' && (r.reason as HttpError).status === 429) as PromiseRejectedResult;
    assert.ok(Number((limited.reason as HttpError).headers['retry-after']) >= 1);
    await assert.rejects(authenticate(requestFrom('203.0.113.7', key), store, limiter), (err: HttpError) => err.status === 429, 'even the right key waits');
    assert.equal((await authenticate(requestFrom('198.51.100.1', key), store, limiter)).name, 'real', 'another address is not affected');
  });

  it('guesses at a key still stored as scrypt cost at most 20 scrypt evaluations', async () => {
    const key = 'API-OLDKEY23' + 'A'.repeat(24);
    const salt = randomBytes(16);
    const hash = scryptSync(key, salt, 32, { N: 16384, r: 8, p: 1 }).toString('base64');
    await t.store.insertApiKey({ name: 'old', prefix: key.slice(4, 12), hash, salt: salt.toString('base64') });
    const limiter = new FailureLimiter({ maxFailures: 20 });
    const before = sharedScryptPool().stats().evaluated;
    const results = await Promise.allSettled(guessesFor(key, 300).map((guess) => authenticate(requestFrom('203.0.113.8', guess), t.store, limiter)));
    const evaluated = sharedScryptPool().stats().evaluated - before;
    assert.ok(evaluated <= 20, `${evaluated} scrypt evaluations`);
    const statuses = results.map((r) => ((r as PromiseRejectedResult).reason as HttpError).status);
    assert.ok(statuses.every((s) => s === 401 || s === 429));
    assert.ok(
      results.every((r) => (r as PromiseRejectedResult).reason.status !== 429 || Number((r as PromiseRejectedResult).reason.headers['retry-after']) >= 1),
      'every 429 carries Retry-After',
    );
    // The pool (2 threads, 8 queued) refuses what the limit let through beyond its bound.
    assert.equal(statuses.filter((s) => s === 401).length, evaluated);
  });
});

describe('request limiter (token bucket)', () => {
  it('allows a burst of perMinute, then one request per 60/perMinute s, with Retry-After until then', () => {
    let now = 0;
    const limiter = new RequestLimiter({ perMinute: 3, now: () => now });
    assert.deepEqual([1, 2, 3].map(() => limiter.take('key-a').allowed), [true, true, true]);
    assert.deepEqual(limiter.take('key-a'), { allowed: false, retryAfterSeconds: 20 });
    assert.equal(limiter.take('key-b').allowed, true, 'another key has its own bucket');
    now = 19_000;
    assert.deepEqual(limiter.take('key-a'), { allowed: false, retryAfterSeconds: 1 });
    now = 20_000;
    assert.equal(limiter.take('key-a').allowed, true, 'refilled by one');
    assert.equal(limiter.take('key-a').allowed, false);
    now = 600_000;
    assert.deepEqual([1, 2, 3, 4].map(() => limiter.take('key-a').allowed), [true, true, true, false], 'never more than a burst of perMinute');
  });

  it('remembers at most maxKeys buckets, forgetting the stalest', () => {
    const limiter = new RequestLimiter({ perMinute: 1, maxKeys: 2, now: () => 0 });
    for (const key of ['a', 'b', 'c']) assert.equal(limiter.take(key).allowed, true);
    assert.equal(limiter.take('c').allowed, false);
    assert.equal(limiter.take('a').allowed, true, 'a was forgotten: a full bucket again');
  });
});

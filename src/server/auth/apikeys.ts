import { createHash, timingSafeEqual } from 'node:crypto';
import { isReefError } from '../../errors.js';
import { randomBase32 } from '../store/ids.js';
import type { Access, ApiKey, ApiKeyCredential, Store } from '../store/types.js';
import type { AttemptSlot } from './failure-limiter.js';
import { sharedScryptPool } from './scrypt-pool.js';
import { matchesStoredHash, SHA256_FORMAT, storedSecretHash } from './secret-hash.js';

/**
 * API keys look like `API-` + 32 base32 characters (160 random bits). The first 8 after
 * `API-` are a non-secret prefix that finds the row; the whole key is checked against its
 * stored hash. The key itself is shown once at creation and never stored or logged.
 *
 * Stored hash: `sha256$<base64 SHA-256 of the key>` (secret-hash.ts says why not scrypt:
 * ~50 ms per check was what let a burst of guesses starve the server). Keys made before this format hold a bare base64 scrypt hash with a
 * salt; they keep working, verified on the bounded scrypt pool (they cannot be converted:
 * the key itself is not known until it is presented).
 */

const KEY_BODY = 32;
const PREFIX_LENGTH = 8;
const KEY_FORMAT = /^API-[A-Z2-7]{32}$/;
/** Parameters of keys made before SHA-256 (scrypt, 16-byte salt, 32-byte hash). */
const LEGACY_SCRYPT = { N: 16384, r: 8, p: 1 } as const;

export interface CreatedApiKey extends Access {
  id: string;
  name: string;
  /** The secret: print it once, then forget it. */
  key: string;
}

/** true when `presented` hashes to the credential's stored hash, in either format. */
async function matchesCredential(presented: string, cred: ApiKeyCredential): Promise<boolean> {
  if (cred.hash.startsWith(SHA256_FORMAT)) return matchesStoredHash(presented, cred.hash);
  const expected = Buffer.from(cred.hash, 'base64');
  const actual = await sharedScryptPool().hash({ secret: presented, salt: Buffer.from(cred.salt, 'base64'), keyLength: expected.length, params: LEGACY_SCRYPT });
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

export function isApiKeyFormat(presented: string): boolean {
  return KEY_FORMAT.test(presented);
}

/** A new key; without `access`, an admin of the whole server (check a scope with checkedAccess first). */
export async function createApiKey(store: Store, name: string, access?: Access): Promise<CreatedApiKey> {
  // A prefix collision (40 bits) is unlikely but possible: draw again.
  for (let attempt = 1; ; attempt++) {
    const key = `API-${randomBase32(KEY_BODY)}`;
    try {
      // No salt: the key's own 160 random bits make every hash unique.
      const row = await store.insertApiKey({ name, prefix: key.slice(4, 4 + PREFIX_LENGTH), hash: storedSecretHash(key), salt: '', access });
      return { id: row.id, name: row.name, key, role: row.role, scope: row.scope };
    } catch (err) {
      if (attempt < 3 && isReefError(err, 'REEF_CONFLICT')) continue;
      throw err;
    }
  }
}

// ---------------------------------------------------------------- cache

export interface ApiKeyCacheOptions {
  /** Verified keys remembered; the least recently used goes first. Default 1000. */
  maxEntries?: number;
  /**
   * How long a remembered key is trusted before its row is read again (not re-hashed).
   * Bounds how late a revocation made on another server node takes effect. Default 60 s.
   */
  ttlMs?: number;
  /** Minimum interval between lastUsedAt writes for one key. Default 60 s. */
  touchIntervalMs?: number;
  now?: () => number;
}

interface CacheEntry {
  key: ApiKey;
  hash: string;
  checkedAt: number;
  touchedAt: number;
}

/**
 * Successful verifications keyed by sha256 of the presented key (the key itself is not
 * kept), so a hot API path reads no row and writes lastUsedAt at most once a minute (and
 * a legacy scrypt key is not re-hashed on every request).
 */
export class ApiKeyCache {
  readonly maxEntries: number;
  readonly ttlMs: number;
  readonly touchIntervalMs: number;
  readonly now: () => number;
  readonly #entries = new Map<string, CacheEntry>();
  /** Verifications running now, so a burst with one new key hashes it once. */
  readonly inFlight = new Map<string, Promise<ApiKey | null>>();
  /** Bumped by forgetKey, so a verification that began before a revoke is not cached. */
  generation = 0;

  constructor(options: ApiKeyCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 1000;
    this.ttlMs = options.ttlMs ?? 60_000;
    this.touchIntervalMs = options.touchIntervalMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(digest: string): CacheEntry | undefined {
    const entry = this.#entries.get(digest);
    if (entry) {
      // Re-insert: Map order is the LRU order.
      this.#entries.delete(digest);
      this.#entries.set(digest, entry);
    }
    return entry;
  }

  set(digest: string, entry: CacheEntry): void {
    this.#entries.delete(digest);
    this.#entries.set(digest, entry);
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  delete(digest: string): void {
    this.#entries.delete(digest);
  }

  forgetKey(id: string): void {
    this.generation++;
    for (const [digest, entry] of this.#entries) if (entry.key.id === id) this.#entries.delete(digest);
  }
}

const caches = new WeakMap<Store, ApiKeyCache>();

/** The cache verifyApiKey and revokeApiKey use for a store unless given one. */
export function apiKeyCacheFor(store: Store): ApiKeyCache {
  let cache = caches.get(store);
  if (!cache) {
    cache = new ApiKeyCache();
    caches.set(store, cache);
  }
  return cache;
}

// ---------------------------------------------------------------- verify, revoke, list

function usable(cred: ApiKeyCredential | null): cred is ApiKeyCredential {
  return cred !== null && cred.revokedAt === null;
}

function publicPart(cred: ApiKeyCredential): ApiKey {
  const { hash: _hash, salt: _salt, ...key } = cred;
  return key;
}

async function verifyUncached(store: Store, cache: ApiKeyCache, presented: string, digest: string): Promise<ApiKey | null> {
  const generation = cache.generation;
  const cred = await store.getApiKeyCredential(presented.slice(4, 4 + PREFIX_LENGTH));
  if (!usable(cred) || !(await matchesCredential(presented, cred))) return null;
  const now = cache.now();
  await store.markApiKeyUsed(cred.id, new Date(now));
  const key = { ...publicPart(cred), lastUsedAt: new Date(now).toISOString() };
  if (cache.generation === generation) cache.set(digest, { key, hash: cred.hash, checkedAt: now, touchedAt: now });
  return key;
}

/**
 * Admits one verification that costs a row read and a hash (see FailureLimiter.admit).
 * Called synchronously, before any await; throwing refuses the attempt.
 */
export type AdmitAttempt = () => AttemptSlot;

/**
 * The key record if `presented` is a valid, unrevoked key; null otherwise (wrong format,
 * unknown, wrong secret, revoked). Never throws for bad input, never echoes the key.
 * `admit` is asked before every attempt that is not a cached key or a copy of a check
 * already running, and its slot is told how the attempt ended; it may throw to refuse.
 * REEF_BUSY (HashingBusyError) when a legacy key needs scrypt and the pool is full.
 */
export async function verifyApiKey(
  store: Store,
  presented: string,
  cache: ApiKeyCache = apiKeyCacheFor(store),
  admit?: AdmitAttempt,
): Promise<ApiKey | null> {
  if (typeof presented !== 'string' || !isApiKeyFormat(presented)) {
    admit?.().failed();
    return null;
  }
  const digest = createHash('sha256').update(presented).digest('hex');
  const entry = cache.get(digest);
  if (entry) {
    const now = cache.now();
    if (now - entry.checkedAt >= cache.ttlMs) {
      // Cheap re-check: same row, same hash, still not revoked.
      const cred = await store.getApiKeyCredential(entry.key.prefix);
      if (!usable(cred) || cred.id !== entry.key.id || cred.hash !== entry.hash) {
        cache.delete(digest);
        return null;
      }
      entry.checkedAt = now;
    }
    if (now - entry.touchedAt >= cache.touchIntervalMs) {
      entry.touchedAt = now;
      entry.key = { ...entry.key, lastUsedAt: new Date(now).toISOString() };
      await store.markApiKeyUsed(entry.key.id, new Date(now));
    }
    return entry.key;
  }
  let pending = cache.inFlight.get(digest);
  if (!pending) {
    const slot = admit?.();
    pending = verifyUncached(store, cache, presented, digest)
      .then(
        (key) => {
          if (key) slot?.succeeded();
          else slot?.failed();
          return key;
        },
        (err: unknown) => {
          slot?.withdrawn();
          throw err;
        },
      )
      .finally(() => cache.inFlight.delete(digest));
    cache.inFlight.set(digest, pending);
  }
  return pending;
}

/** Revokes the key and forgets it in this process's cache at once. false if missing or already revoked. */
export async function revokeApiKey(store: Store, id: string, cache: ApiKeyCache = apiKeyCacheFor(store)): Promise<boolean> {
  const revoked = await store.revokeApiKey(id);
  cache.forgetKey(id);
  return revoked;
}

/** Every key, revoked ones included; never the hash or salt. */
export async function listApiKeys(store: Store): Promise<ApiKey[]> {
  return store.listApiKeys();
}

import assert from 'node:assert/strict';
import { createHash, randomBytes, scryptSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import {
  ApiKeyCache,
  createApiKey,
  isApiKeyFormat,
  listApiKeys,
  revokeApiKey,
  verifyApiKey,
} from '../../../src/server/auth/apikeys.js';
import { sharedScryptPool } from '../../../src/server/auth/scrypt-pool.js';
import type { Store } from '../../../src/server/store/types.js';
import { tempStore, type TempStore } from '../store/helpers.js';

/** The store, counting credential reads (each uncached or expired verification makes one). */
function spy(store: Store): Store & { credentialReads: number } {
  const counter = { credentialReads: 0 };
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'credentialReads') return counter.credentialReads;
      if (prop === 'getApiKeyCredential') {
        return (prefix: string) => {
          counter.credentialReads++;
          return target.getApiKeyCredential(prefix);
        };
      }
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Store & { credentialReads: number };
}

describe('api keys', () => {
  let t: TempStore;
  let store: Store;
  before(async () => {
    t = await tempStore();
    store = t.store;
  });
  after(() => t.cleanup());

  it('creates a key shown once and stores only its SHA-256', async () => {
    const own = await tempStore();
    const created = await createApiKey(own.store, 'admin');
    assert.match(created.key, /^API-[A-Z2-7]{32}$/);
    assert.ok(isApiKeyFormat(created.key));
    assert.equal(created.name, 'admin');

    const cred = (await own.store.getApiKeyCredential(created.key.slice(4, 12)))!;
    assert.equal(cred.id, created.id);
    assert.equal(cred.hash, `sha256$${createHash('sha256').update(created.key).digest('base64')}`);
    assert.equal(cred.salt, '', 'a random 160-bit key needs no salt');

    // The secret part appears nowhere in the database files, nor its sha256 (the cache key).
    await own.store.close();
    const secret = created.key.slice(12);
    for (const file of [own.path, `${own.path}-wal`]) {
      const bytes = await readFile(file).catch(() => Buffer.alloc(0));
      assert.equal(bytes.includes(secret), false, `key body not in ${file}`);
      assert.equal(bytes.includes(createHash('sha256').update(created.key).digest('hex')), false);
    }
    await own.cleanup();
  });

  it('verifies the right key and refuses wrong, malformed and unknown ones', async () => {
    const { key, id } = await createApiKey(store, 'ci');
    const ok = await verifyApiKey(store, key);
    assert.equal(ok?.id, id);
    assert.equal(ok?.name, 'ci');
    assert.ok(ok?.lastUsedAt, 'lastUsedAt recorded');
    assert.equal('hash' in (ok ?? {}), false);

    const wrongSecret = key.slice(0, 12) + (key[12] === 'A' ? 'B' : 'A') + key.slice(13);
    assert.equal(await verifyApiKey(store, wrongSecret), null, 'right prefix, wrong secret');
    assert.equal(await verifyApiKey(store, 'API-' + 'A'.repeat(32)), null, 'unknown prefix');
    assert.equal(await verifyApiKey(store, key.toLowerCase()), null);
    assert.equal(await verifyApiKey(store, ''), null);
    assert.equal(await verifyApiKey(store, key + 'X'), null);
    assert.equal(await verifyApiKey(store, undefined as unknown as string), null);
  });

  it('still verifies keys made before SHA-256 (salted scrypt), on the scrypt pool', async () => {
    // The row a key created by the earlier release holds: bare base64 scrypt(key, salt).
    const key = 'API-LEGACY23' + 'A'.repeat(24);
    const salt = randomBytes(16);
    const hash = scryptSync(key, salt, 32, { N: 16384, r: 8, p: 1 }).toString('base64');
    const row = await store.insertApiKey({ name: 'legacy', prefix: key.slice(4, 12), hash, salt: salt.toString('base64') });
    const before = sharedScryptPool().stats().evaluated;
    assert.equal((await verifyApiKey(store, key, new ApiKeyCache()))?.id, row.id);
    assert.equal(await verifyApiKey(store, key.slice(0, -1) + 'B', new ApiKeyCache()), null);
    assert.equal(sharedScryptPool().stats().evaluated - before, 2, 'both checks hashed with scrypt on the pool');
  });

  it('caches a verified key so repeated requests skip hashing and the database', async () => {
    const { key } = await createApiKey(store, 'hot');
    const counted = spy(store);
    const cache = new ApiKeyCache();
    await verifyApiKey(counted, key, cache);
    for (let i = 0; i < 50; i++) assert.ok(await verifyApiKey(counted, key, cache));
    assert.equal(counted.credentialReads, 1);
    assert.equal(cache.size, 1);

    // A burst with a new key hashes it once.
    const burst = await createApiKey(store, 'burst');
    const before = counted.credentialReads;
    const results = await Promise.all(Array.from({ length: 10 }, () => verifyApiKey(counted, burst.key, cache)));
    assert.ok(results.every((r) => r?.id === burst.id));
    assert.equal(counted.credentialReads - before, 1);
  });

  it('revocation takes effect at once, cached or not', async () => {
    const { key, id } = await createApiKey(store, 'to-revoke');
    assert.ok(await verifyApiKey(store, key));
    assert.equal(await revokeApiKey(store, id), true);
    assert.equal(await verifyApiKey(store, key), null);
    assert.equal(await revokeApiKey(store, id), false, 'already revoked');
    const listed = (await listApiKeys(store)).find((k) => k.id === id)!;
    assert.ok(listed.revokedAt);
  });

  it('a revocation made elsewhere (another node) is seen once the cache entry is older than ttl', async () => {
    const { key, id } = await createApiKey(store, 'other-node');
    let now = 1_000_000;
    const cache = new ApiKeyCache({ ttlMs: 60_000, now: () => now });
    const counted = spy(store);
    assert.ok(await verifyApiKey(counted, key, cache));
    await store.revokeApiKey(id); // straight to the store: this process's cache does not know
    now += 30_000;
    assert.ok(await verifyApiKey(counted, key, cache), 'still trusted within ttl');
    now += 30_000;
    assert.equal(await verifyApiKey(counted, key, cache), null, 'row re-read after ttl');
    assert.equal(cache.size, 0);
  });

  it('re-checks an unrevoked key after ttl by reading its row, not by hashing again', async () => {
    const { key } = await createApiKey(store, 'ttl');
    let now = 5_000_000;
    const cache = new ApiKeyCache({ ttlMs: 1000, touchIntervalMs: 1000, now: () => now });
    const counted = spy(store);
    const first = await verifyApiKey(counted, key, cache);
    now += 1500;
    const second = await verifyApiKey(counted, key, cache);
    assert.equal(counted.credentialReads, 2);
    assert.equal(second?.lastUsedAt, new Date(now).toISOString(), 'lastUsedAt refreshed at most once per interval');
    assert.notEqual(second?.lastUsedAt, first?.lastUsedAt);
  });

  it('evicts the least recently used entry beyond maxEntries', async () => {
    const cache = new ApiKeyCache({ maxEntries: 2 });
    const [a, b, c] = await Promise.all([createApiKey(store, 'a'), createApiKey(store, 'b'), createApiKey(store, 'c')]);
    const counted = spy(store);
    await verifyApiKey(counted, a.key, cache);
    await verifyApiKey(counted, b.key, cache);
    await verifyApiKey(counted, a.key, cache); // a is now the most recent
    await verifyApiKey(counted, c.key, cache); // evicts b
    assert.equal(cache.size, 2);
    const reads = counted.credentialReads;
    await verifyApiKey(counted, a.key, cache);
    assert.equal(counted.credentialReads, reads, 'a still cached');
    await verifyApiKey(counted, b.key, cache);
    assert.equal(counted.credentialReads, reads + 1, 'b was evicted');
  });

  it('lists keys without secrets', async () => {
    const keys = await listApiKeys(store);
    assert.ok(keys.length >= 3);
    for (const k of keys) {
      assert.deepEqual(Object.keys(k).sort(), ['createdAt', 'id', 'lastUsedAt', 'name', 'prefix', 'revokedAt', 'role', 'scope']);
      assert.match(k.prefix, /^[A-Z2-7]{8}$/);
    }
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ReefError } from '../../../src/errors.js';
import { createApiKey, revokeApiKey } from '../../../src/server/auth/apikeys.js';
import { startHarness, type Harness } from './harness.js';

function rejectsWith(code: string, status?: number) {
  return (err: unknown) => {
    assert.ok(err instanceof ReefError, `expected a ReefError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (status !== undefined) assert.equal((err as ReefError & { status?: number }).status, status);
    return true;
  };
}

describe('api basics: auth, errors, headers', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ maxJsonBytes: 64 * 1024 });
  });
  after(() => h.close());

  it('answers /api/ping without a key and /api with one', async () => {
    assert.deepEqual(await h.clientWith().json('GET', '/api/ping'), { ok: true });
    assert.deepEqual(await h.client.json('GET', '/api'), h.info);
  });

  it('refuses a missing key with 401 REEF_UNAUTHENTICATED and a hint', async () => {
    await assert.rejects(h.clientWith().json('GET', '/api'), (err: ReefError) => {
      assert.equal(err.code, 'REEF_UNAUTHENTICATED');
      assert.match(err.message, /X-Reef-ApiKey.*reef apikey create/);
      return true;
    });
    const r = await h.raw('GET', '/api/machines', { auth: false });
    assert.equal(r.status, 401);
  });

  it('refuses a wrong key and a revoked key with 401 REEF_BAD_API_KEY', async () => {
    await assert.rejects(h.clientWith('API-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA').json('GET', '/api'), rejectsWith('REEF_BAD_API_KEY', 401));
    await assert.rejects(h.clientWith('not-a-key').json('GET', '/api'), rejectsWith('REEF_BAD_API_KEY', 401));
    const created = await createApiKey(h.store, 'soon revoked');
    assert.deepEqual(await h.clientWith(created.key).json('GET', '/api'), h.info);
    await revokeApiKey(h.store, created.id);
    await assert.rejects(h.clientWith(created.key).json('GET', '/api'), rejectsWith('REEF_BAD_API_KEY', 401));
  });

  it('accepts Authorization: Bearer', async () => {
    const r = await h.raw('GET', '/api', { headers: { authorization: `Bearer ${h.adminKey}` } });
    assert.equal(r.status, 200);
    assert.equal(r.json.product, 'Reef');
    const wrong = await h.raw('GET', '/api', { headers: { authorization: 'Basic abc' } });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.error.code, 'REEF_UNAUTHENTICATED');
  });

  it('manages API keys over the API; a revoked key stops working at once', async () => {
    const created = await h.client.json<{ id: string; name: string; key: string }>('POST', '/api/apikeys', { body: { name: 'ci' } });
    assert.match(created.key, /^API-[A-Z2-7]{32}$/);
    const list = await h.client.json<{ items: Array<{ id: string; name: string; revokedAt: string | null }> }>('GET', '/api/apikeys');
    const row = list.items.find((k) => k.id === created.id)!;
    assert.equal(row.name, 'ci');
    assert.ok(!('hash' in row) && !('salt' in row));
    assert.ok(!JSON.stringify(list).includes(created.key));
    const ci = h.clientWith(created.key);
    await ci.json('GET', '/api');
    const del = await h.raw('DELETE', `/api/apikeys/${created.id}`);
    assert.equal(del.status, 204);
    await assert.rejects(ci.json('GET', '/api'), rejectsWith('REEF_BAD_API_KEY'));
    const again = await h.raw('DELETE', `/api/apikeys/${created.id}`);
    assert.equal(again.status, 404);
    const bad = await h.raw('POST', '/api/apikeys', { headers: { 'content-type': 'application/json' }, body: '{"name":""}' });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /name: must not be empty/);
  });

  it('sets security headers on every response', async () => {
    for (const r of [await h.raw('GET', '/api'), await h.raw('GET', '/api/nope'), await h.raw('GET', '/api', { auth: false })]) {
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.equal(r.headers['cache-control'], 'no-store');
      assert.match(String(r.headers['content-security-policy']), /default-src 'none'/);
      assert.equal(r.headers['x-frame-options'], 'DENY');
      assert.match(String(r.headers['content-type']), /^application\/json/);
    }
  });

  it('answers unknown routes with 404 REEF_NO_ROUTE and wrong methods with 405 + Allow', async () => {
    const missing = await h.raw('GET', '/api/nothing-here');
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'REEF_NO_ROUTE');
    const outside = await h.raw('GET', '/elsewhere');
    assert.equal(outside.status, 404);
    const wrong = await h.raw('PUT', '/api/machines');
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.allow, 'GET, HEAD, POST');
    assert.equal(wrong.json.error.code, 'REEF_METHOD_NOT_ALLOWED');
    const del = await h.raw('PATCH', '/api/tasks/T-000001');
    assert.equal(del.status, 405);
    assert.equal(del.headers.allow, 'GET, HEAD');
    const badEscape = await h.raw('GET', '/api/machines/%E0%A4%A');
    assert.equal(badEscape.status, 400);
  });

  it('refuses malformed JSON with 400 REEF_BAD_JSON', async () => {
    const r = await h.raw('POST', '/api/environments', { headers: { 'content-type': 'application/json' }, body: '{"name": "x",' });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'REEF_BAD_JSON');
    assert.match(r.json.error.message, /^the request body is not valid JSON: /);
    const empty = await h.raw('POST', '/api/environments', { headers: { 'content-type': 'application/json' } });
    assert.equal(empty.json.error.code, 'REEF_BAD_JSON');
  });

  it('refuses a wrong or missing content type with 415', async () => {
    const r = await h.raw('POST', '/api/environments', { headers: { 'content-type': 'text/plain' }, body: '{"name":"x"}' });
    assert.equal(r.status, 415);
    assert.equal(r.json.error.code, 'REEF_UNSUPPORTED_MEDIA_TYPE');
    const none = await h.raw('POST', '/api/environments', { body: '{"name":"x"}' });
    assert.equal(none.status, 415);
    const latin = await h.raw('POST', '/api/environments', { headers: { 'content-type': 'application/json; charset=latin1' }, body: '{"name":"x"}' });
    assert.equal(latin.status, 415);
    const ok = await h.raw('POST', '/api/environments', { headers: { 'content-type': 'application/json; charset=UTF-8' }, body: '{"name":"x"}' });
    assert.equal(ok.status, 201);
  });

  it('refuses a JSON body over the limit with 413, declared or chunked', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(100 * 1024) });
    const declared = await h.raw('POST', '/api/environments', { headers: { 'content-type': 'application/json' }, body: big });
    assert.equal(declared.status, 413);
    assert.equal(declared.json.error.code, 'REEF_TOO_LARGE');
    const { Readable } = await import('node:stream');
    await assert.rejects(
      h.client.json('POST', '/api/environments', { stream: Readable.from([Buffer.from(big)]), headers: { 'content-type': 'application/json' } }),
      rejectsWith('REEF_TOO_LARGE', 413),
    );
    // The connection that was refused is still good for the next request.
    assert.equal((await h.raw('GET', '/api')).status, 200);
  });

  it('maps unexpected errors to 500 without leaking details', async () => {
    const original = h.store.listWorkerPools.bind(h.store);
    h.store.listWorkerPools = async () => {
      throw new Error('secret internal detail at /var/lib/reef');
    };
    try {
      const r = await h.raw('GET', '/api/worker-pools');
      assert.equal(r.status, 500);
      assert.equal(r.json.error.code, 'REEF_INTERNAL');
      assert.doesNotMatch(r.text, /secret|\/var\/lib|at /);
    } finally {
      h.store.listWorkerPools = original;
    }
  });
});

describe('api auth rate limit', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ authFailuresPerMinute: 5 });
  });
  after(() => h.close());

  it('answers 429 with Retry-After after too many failures, even to a right key', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await h.raw('GET', '/api', { headers: { 'x-reef-apikey': `API-${'B'.repeat(31)}${i}` } });
      assert.equal(r.status, 401);
    }
    const blocked = await h.raw('GET', '/api', { headers: { 'x-reef-apikey': 'API-WRONG' } });
    assert.equal(blocked.status, 429);
    assert.equal(blocked.json.error.code, 'REEF_RATE_LIMITED');
    const retry = Number(blocked.headers['retry-after']);
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    const good = await h.raw('GET', '/api');
    assert.equal(good.status, 429);
    // The public probe is not behind authentication.
    assert.equal((await h.raw('GET', '/api/ping', { auth: false })).status, 200);
  });
});

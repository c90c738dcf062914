import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  clearedSessionCookie,
  csrfMatches,
  endSession,
  findSession,
  hashSessionId,
  randomToken,
  readCookie,
  sessionCookie,
  startSession,
} from '../../src/server/auth/sessions.js';
import { silentLogger } from '../../src/logging.js';
import { ensureInitialCredentials, forgetInitialCredentials, readInitialCredentials } from '../../src/server/auth/initial-credentials.js';
import { checkCredentials, createUser } from '../../src/server/auth/users.js';
import { createSqliteStore } from '../../src/server/store/index.js';
import type { Store, User } from '../../src/server/store/types.js';

describe('portal users, sessions and CSRF tokens', () => {
  let dir: string;
  let store: Store;
  let alice: User;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'reef-sessions-'));
    store = await createSqliteStore(join(dir, 'reef.db'));
    alice = await createUser(store, 'Alice', 'alice-password');
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the first admin is created once, with a password that signs in', async () => {
    const fresh = await createSqliteStore(join(dir, 'fresh.db'));
    try {
      const freshDir = join(dir, 'fresh-data');
      const { password, apiKey, file } = await ensureInitialCredentials(fresh, freshDir, 'node-1');
      assert.match(password ?? '', /^[A-Z2-7]{24}$/);
      assert.match(apiKey ?? '', /^API-/);
      assert.deepEqual(await readInitialCredentials(freshDir), { username: 'admin', password, apiKey });
      assert.deepEqual(await ensureInitialCredentials(fresh, freshDir, 'node-1'), { file }, 'not again once a user and a key exist; the file is still named');
      // Signing in as someone else keeps the file; admin's first sign-in deletes it.
      await forgetInitialCredentials(freshDir, 'Alice', silentLogger);
      assert.ok(await readInitialCredentials(freshDir));
      await forgetInitialCredentials(freshDir, 'ADMIN', silentLogger);
      assert.equal(await readInitialCredentials(freshDir), undefined);
      assert.deepEqual(await ensureInitialCredentials(fresh, freshDir, 'node-1'), {});
      assert.equal((await checkCredentials(fresh, 'ADMIN', password!))?.username, 'admin', 'usernames are case-insensitive');
      assert.equal(await checkCredentials(fresh, 'admin', 'wrong'), null);
      const credential = await fresh.getUserCredential('admin');
      assert.ok(credential && !credential.passwordHash.includes(password!), 'only a hash is stored');
    } finally {
      await fresh.close();
    }
  });

  test('unknown users and duplicate usernames', async () => {
    assert.equal(await checkCredentials(store, 'nobody', 'alice-password'), null);
    assert.equal(await checkCredentials(store, '', 'alice-password'), null);
    await assert.rejects(createUser(store, 'ALICE', 'x'), { code: 'REEF_CONFLICT' });
  });

  test('a session id is 256 random bits; the store keeps only its SHA-256', async () => {
    const { id, session } = await startSession(store, alice);
    assert.match(id, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(id, 'base64url').length, 32);
    assert.equal(session.idHash, hashSessionId(id));
    assert.match(session.idHash, /^[0-9a-f]{64}$/);
    assert.equal(await store.getSession(id), null, 'the raw id finds nothing');
    const found = await findSession(store, id);
    assert.equal(found?.username, 'Alice');
    assert.equal(found?.csrfToken, session.csrfToken);
    assert.notEqual(session.csrfToken, id);
  });

  test('expired, malformed and ended sessions are not found', async () => {
    const { id } = await startSession(store, alice, { ttlMs: 1000 });
    assert.ok(await findSession(store, id));
    assert.equal(await findSession(store, id, Date.now() + 2000), null, 'expired');
    assert.equal(await store.getSession(hashSessionId(id)), null, 'an expired session is deleted when seen');

    for (const bad of [undefined, '', 'short', randomToken() + 'x', 'a'.repeat(42) + '!']) assert.equal(await findSession(store, bad), null);
    assert.equal(await findSession(store, randomToken()), null, 'unknown');

    const live = await startSession(store, alice);
    await endSession(store, live.id);
    assert.equal(await findSession(store, live.id), null, 'signed out');
  });

  test('signing in sweeps expired sessions', async () => {
    const old = await startSession(store, alice, { ttlMs: 1, now: Date.now() - 60_000 });
    await startSession(store, alice);
    assert.equal(await store.getSession(old.session.idHash), null);
  });

  test('CSRF tokens match only exactly', async () => {
    const { session } = await startSession(store, alice);
    assert.equal(csrfMatches(session, session.csrfToken), true);
    assert.equal(csrfMatches(session, randomToken()), false);
    assert.equal(csrfMatches(session, undefined), false);
    assert.equal(csrfMatches(session, ''), false);
    assert.equal(csrfMatches(session, session.csrfToken.slice(1)), false);
    assert.equal(csrfMatches(session, session.csrfToken + 'A'), false);
    assert.equal(csrfMatches(session, session.csrfToken.toLowerCase() === session.csrfToken ? session.csrfToken.toUpperCase() : session.csrfToken.toLowerCase()), false);
  });

  test('cookies: read from a Cookie header, written HttpOnly, Secure and SameSite=Strict', () => {
    assert.equal(readCookie('a=1; reef_session=abc; b=2', 'reef_session'), 'abc');
    assert.equal(readCookie('reef_session="q"', 'reef_session'), 'q');
    assert.equal(readCookie('xreef_session=1; reef_session=2', 'reef_session'), '2');
    assert.equal(readCookie('reef_session=first; reef_session=second', 'reef_session'), 'first');
    assert.equal(readCookie('other=1', 'reef_session'), undefined);
    assert.equal(readCookie(undefined, 'reef_session'), undefined);
    assert.equal(sessionCookie('ID', 3_600_000), 'reef_session=ID; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=3600');
    assert.match(clearedSessionCookie(), /^reef_session=; HttpOnly; Secure; SameSite=Strict; Path=\/; Max-Age=0$/);
  });
});

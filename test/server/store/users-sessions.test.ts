import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Store } from '../../../src/server/store/types.js';
import { forEachStore, type TempStore } from './helpers.js';

forEachStore((kind, open) => {
  describe(`${kind} store: portal users and sessions`, () => {
    let t: TempStore;
    let store: Store;
    before(async () => {
      t = await open();
      store = t.store;
    });
    after(() => t.cleanup());

    it('inserts users with case-insensitively unique names and counts them', async () => {
      assert.equal(await store.countUsers(), 0);
      const alice = await store.insertUser({ username: ' Alice ', passwordHash: 'scrypt$x' });
      assert.match(alice.id, /^user-[a-z2-7]{12}$/);
      assert.equal(alice.username, 'Alice');
      await assert.rejects(store.insertUser({ username: 'ALICE', passwordHash: 'scrypt$y' }), {
        code: 'REEF_CONFLICT',
        message: /"ALICE" exists already/,
      });
      await assert.rejects(store.insertUser({ username: 'bob', passwordHash: '' }), { code: 'REEF_INVALID_ARGUMENT' });
      await assert.rejects(store.insertUser({ username: '', passwordHash: 'h' }), { code: 'REEF_INVALID_ARGUMENT' });
      assert.deepEqual(await store.getUserCredential('alice'), { ...alice, passwordHash: 'scrypt$x' });
      assert.equal(await store.getUserCredential('nobody'), null);
      assert.equal(await store.countUsers(), 1);
    });

    it('folds ASCII case only, as SQLite does: Ä and ä are different names', async () => {
      await store.insertUser({ username: 'Äpfel', passwordHash: 'h' });
      await store.insertUser({ username: 'äpfel', passwordHash: 'h' });
      assert.equal((await store.getUserCredential('ÄPFEL'))!.username, 'Äpfel');
    });

    it('stores sessions with the username joined in, and expires them', async () => {
      const user = await store.insertUser({ username: 'carol', passwordHash: 'h' });
      const session = await store.insertSession({
        idHash: 'a'.repeat(64),
        userId: user.id,
        csrfToken: 'csrf',
        expiresAt: '2030-01-01T00:00:00Z',
      });
      assert.deepEqual(
        [session.username, session.userId, session.csrfToken, session.expiresAt],
        ['carol', user.id, 'csrf', '2030-01-01T00:00:00.000Z'],
      );
      assert.deepEqual(await store.getSession('a'.repeat(64)), session);
      await store.insertSession({ idHash: 'b'.repeat(64), userId: user.id, csrfToken: 'c2', expiresAt: new Date('2020-01-01T00:00:00Z') });
      await assert.rejects(
        store.insertSession({ idHash: 'c'.repeat(64), userId: 'user-missing', csrfToken: 'x', expiresAt: '2030-01-01T00:00:00Z' }),
        { code: 'REEF_NOT_FOUND' },
      );
      assert.equal(await store.deleteExpiredSessions('2020-01-01T00:00:00Z'), 1, 'expiry at `at` counts as expired');
      assert.equal(await store.getSession('b'.repeat(64)), null);
      assert.equal(await store.deleteSession('a'.repeat(64)), true);
      assert.equal(await store.deleteSession('a'.repeat(64)), false);
      assert.equal(await store.getSession('a'.repeat(64)), null);
    });
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { storedSecretHash } from '../../../src/server/auth/secret-hash.js';
import type { JoinTokenInsert, Store } from '../../../src/server/store/types.js';
import { forEachStore, type TempStore } from './helpers.js';

let n = 0;
function insert(extra: Partial<JoinTokenInsert> = {}): JoinTokenInsert {
  return {
    hash: storedSecretHash(`RJT-TEST${++n}`),
    scope: { kind: 'target', environments: ['Production'], roles: ['web'], workerPools: [] },
    uses: 1,
    createdBy: 'user "admin"',
    expiresAt: new Date(Date.now() + 3600_000),
    ...extra,
  };
}

forEachStore((kind, open) => {
  describe(`${kind} store: join tokens`, () => {
    let t: TempStore;
    let store: Store;
    before(async () => {
      t = await open();
      store = t.store;
    });
    after(() => t.cleanup());

    it('stores a token by its hash with its scope, and lists newest first', async () => {
      const first = await store.insertJoinToken(insert());
      const row = insert({ scope: { kind: 'worker', environments: [], roles: [], workerPools: ['Builders'] }, uses: 3 });
      const second = await store.insertJoinToken(row);
      assert.match(second.id, /^tok-[a-z2-7]{12}$/);
      assert.deepEqual(second.scope, row.scope);
      assert.equal(second.uses, 3);
      assert.equal(second.usesLeft, 3);
      assert.equal(second.createdBy, 'user "admin"');
      assert.deepEqual(await store.getJoinTokenByHash(row.hash), second);
      assert.deepEqual(await store.getJoinToken(second.id), second);
      assert.equal(await store.getJoinTokenByHash(storedSecretHash('RJT-NOPE')), null);
      const ids = (await store.listJoinTokens()).map((x) => x.id);
      assert.ok(ids.indexOf(second.id) < ids.indexOf(first.id) || second.createdAt === first.createdAt);
      await assert.rejects(store.insertJoinToken({ ...row }), /unique|UNIQUE/i, 'the hash is unique');
    });

    it('takes uses one at a time down to zero, and gives one back', async () => {
      const token = await store.insertJoinToken(insert({ uses: 2 }));
      assert.equal((await store.consumeJoinToken(token.id))!.usesLeft, 1);
      const last = (await store.consumeJoinToken(token.id))!;
      assert.equal(last.usesLeft, 0);
      assert.ok(last.lastUsedAt);
      assert.equal(await store.consumeJoinToken(token.id), null);
      await store.returnJoinTokenUse(token.id);
      assert.equal((await store.getJoinToken(token.id))!.usesLeft, 1);
      await store.returnJoinTokenUse(token.id);
      await store.returnJoinTokenUse(token.id);
      assert.equal((await store.getJoinToken(token.id))!.usesLeft, 2, 'never more than it was made with');
    });

    it('refuses a use of an expired or revoked token', async () => {
      const expired = await store.insertJoinToken(insert({ expiresAt: new Date(Date.now() - 1000) }));
      assert.equal(await store.consumeJoinToken(expired.id), null);
      const revoked = await store.insertJoinToken(insert());
      assert.equal(await store.revokeJoinToken(revoked.id), true);
      assert.equal(await store.revokeJoinToken(revoked.id), false);
      assert.equal(await store.revokeJoinToken('tok-missing'), false);
      assert.equal(await store.consumeJoinToken(revoked.id), null);
      assert.ok((await store.getJoinToken(revoked.id))!.revokedAt);
      assert.equal((await store.getJoinToken(expired.id))!.usesLeft, 1);
    });

    it('gives the last use to exactly one of two connections racing for it', async () => {
      const other = await t.reopen();
      try {
        for (let round = 0; round < 10; round++) {
          const token = await store.insertJoinToken(insert());
          const results = await Promise.all([store.consumeJoinToken(token.id), other.consumeJoinToken(token.id)]);
          assert.equal(results.filter((r) => r !== null).length, 1, `round ${round}: ${JSON.stringify(results)}`);
          assert.equal((await store.getJoinToken(token.id))!.usesLeft, 0);
        }
      } finally {
        await other.close();
      }
    });
  });
});

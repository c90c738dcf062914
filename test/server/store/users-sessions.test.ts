import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Store } from '../../../src/server/store/types.js';
import { connectPostgres } from '../../../src/server/store/postgres/database.js';
import { sql } from '../../../src/server/store/sql.js';
import { connectSqlite } from '../../../src/server/store/sqlite/database.js';
import { forEachStore, target, type TempStore } from './helpers.js';

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

    it('rows made before roles existed read as admins of the whole server (migration 005)', async () => {
      // The columns' defaults are what ALTER TABLE gave the rows that existed before 005.
      const database = kind === 'sqlite' ? connectSqlite(t.location) : await connectPostgres(t.location);
      try {
        await database.run(sql`INSERT INTO api_keys (id, name, prefix, hash, salt, created_at) VALUES ('key-old', 'old', 'OLDPREFX', 'h', '', ${new Date().toISOString()})`);
        await database.run(sql`INSERT INTO users (id, username, password_hash, created_at) VALUES ('user-old', 'olduser', 'h', ${new Date().toISOString()})`);
      } finally {
        await database.close();
      }
      const whole = { environments: [], workerPools: [] };
      const key = (await store.listApiKeys()).find((k) => k.id === 'key-old')!;
      assert.deepEqual([key.role, key.scope], ['admin', whole]);
      const user = (await store.getUser('OLDUSER'))!;
      assert.deepEqual([user.role, user.scope, user.disabledAt], ['admin', whole, null]);
    });

    it('keeps the role and scope of keys and users, and joins them into sessions', async () => {
      const access = { role: 'operator' as const, scope: { environments: ['Test', 'Staging'], workerPools: ['Builders'] } };
      const key = await store.insertApiKey({ name: 'ci', prefix: 'CIPREFIX', hash: 'h', salt: '', access });
      assert.deepEqual([key.role, key.scope], [access.role, access.scope]);
      assert.deepEqual((await store.getApiKeyCredential('CIPREFIX'))!.scope, access.scope);
      const dave = await store.insertUser({ username: 'dave', passwordHash: 'h', access: { role: 'viewer', scope: access.scope } });
      assert.deepEqual(await store.getUser(dave.id), dave);
      assert.ok((await store.listUsers()).some((u) => u.username === 'dave'));
      const session = await store.insertSession({ idHash: 'd'.repeat(64), userId: dave.id, csrfToken: 'x', expiresAt: '2030-01-01T00:00:00Z' });
      assert.deepEqual([session.role, session.scope], ['viewer', access.scope]);
      assert.equal(await store.setUserAccess(dave.id, { role: 'registrar', scope: { environments: [], workerPools: ['Builders'] } }), true);
      assert.deepEqual([(await store.getSession('d'.repeat(64)))!.role, (await store.getSession('d'.repeat(64)))!.scope.workerPools], ['registrar', ['Builders']]);
      assert.equal(await store.setUserAccess('user-missing', access), false);
    });

    it('disabling a user ends their sessions; a new password ends all but the one kept', async () => {
      const erin = await store.insertUser({ username: 'erin', passwordHash: 'h1' });
      const open = (c: string) => store.insertSession({ idHash: c.repeat(64), userId: erin.id, csrfToken: 'x', expiresAt: '2030-01-01T00:00:00Z' });
      await open('e');
      assert.equal(await store.setUserDisabled(erin.id, true), true);
      assert.equal(await store.setUserDisabled(erin.id, true), false, 'already disabled');
      assert.equal(await store.getSession('e'.repeat(64)), null);
      assert.ok((await store.getUser('erin'))!.disabledAt);
      assert.equal(await store.setUserDisabled(erin.id, false), true);
      assert.equal((await store.getUser('erin'))!.disabledAt, null);
      await open('f');
      await open('9');
      assert.equal(await store.setUserPassword(erin.id, 'h2', 'f'.repeat(64)), true);
      assert.equal((await store.getUserCredential('erin'))!.passwordHash, 'h2');
      assert.ok(await store.getSession('f'.repeat(64)), 'the kept session stays');
      assert.equal(await store.getSession('9'.repeat(64)), null);
      assert.equal(await store.setUserPassword('user-missing', 'h3'), false);
    });

    it('lists only tasks all of whose machines are among the ones given', async () => {
      const a = await store.createMachine(target('scope-a'));
      const b = await store.createMachine(target('scope-b'));
      const onA = await store.createTask({ kind: 'health-check', spec: {}, target: {}, machineIds: [a.id] });
      const onBoth = await store.createTask({ kind: 'health-check', spec: {}, target: {}, machineIds: [a.id, b.id] });
      const ids = (only: string[]) => store.listTasks({ onlyMachineIds: only }).then((tasks) => tasks.map((t) => t.id));
      assert.deepEqual(await ids([a.id]), [onA.id]);
      assert.deepEqual(await ids([a.id, b.id]), [onBoth.id, onA.id]);
      assert.deepEqual(await ids([]), []);
    });
  });
});

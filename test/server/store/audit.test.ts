/**
 * The audit log's table in both stores: events come back newest first with what was
 * recorded, the filters and paging narrow them, events of two nodes on one database land
 * in one log, and the schema itself refuses to change or delete an event, whoever asks.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { AuditEventInput } from '../../../src/server/store/types.js';
import { forEachStore, type TempStore } from './helpers.js';

const admin = { kind: 'api-key', id: 'key-admin', name: 'Admin' };
const alice = { kind: 'user', id: 'user-alice', name: 'Alice' };

function event(kind: string, extra: Partial<AuditEventInput> = {}): AuditEventInput {
  return { node: 'node-a', actor: admin, kind, address: '203.0.113.7', ...extra };
}

/** Runs `statement` on the store's database over a connection of its own, as any client of the database could. */
async function rawStatement(kind: string, t: TempStore, statement: string): Promise<void> {
  if (kind === 'sqlite') {
    const db = new Database(t.location);
    try {
      db.exec(statement);
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: t.location });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

forEachStore((kind, open) => {
  describe(`audit log (${kind})`, () => {
    let t: TempStore;
    before(async () => void (t = await open()));
    after(() => t.cleanup());

    it('stores each event whole and lists newest first', async () => {
      const first = await t.store.appendAuditEvent(event('apikey.created', { target: { kind: 'api-key', id: 'key-ci', name: 'ci' }, details: { prefix: 'ABCD1234' } }));
      const second = await t.store.appendAuditEvent(event('user.sign-in-failed', { actor: { kind: 'user', id: null, name: 'mallory' }, address: '198.51.100.9' }));
      assert.ok(second.id > first.id);
      assert.match(first.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const [newest, older] = await t.store.listAuditEvents();
      assert.deepEqual(older, first);
      assert.deepEqual(first, {
        id: first.id,
        at: first.at,
        node: 'node-a',
        actor: admin,
        kind: 'apikey.created',
        target: { kind: 'api-key', id: 'key-ci', name: 'ci' },
        address: '203.0.113.7',
        details: { prefix: 'ABCD1234' },
      });
      assert.deepEqual(newest, { ...second, target: null, details: null });
    });

    it('refuses malformed kinds and actors', async () => {
      await assert.rejects(t.store.appendAuditEvent(event('Created')), { code: 'REEF_INVALID_ARGUMENT' });
      await assert.rejects(t.store.appendAuditEvent(event('apikey.created', { actor: { kind: 'Robot!', id: null, name: null } })), { code: 'REEF_INVALID_ARGUMENT' });
    });

    it('filters by actor (id or name in any case), kind, family and time, and pages by id', async () => {
      const before = new Date(Date.now() - 1).toISOString();
      const made = [];
      for (const [i, kind] of ['task.created', 'task.cancelled', 'machine.registered', 'task.created'].entries()) {
        made.push(await t.store.appendAuditEvent(event(kind, { actor: i % 2 ? alice : admin, target: { kind: 'task', id: `T-${i}`, name: null } })));
      }
      const ids = (events: { id: number }[]) => events.map((e) => e.id);
      const recent = { since: before };
      assert.deepEqual(ids(await t.store.listAuditEvents({ ...recent, actor: 'alice' })), [made[3]!.id, made[1]!.id]);
      assert.deepEqual(ids(await t.store.listAuditEvents({ ...recent, actor: 'user-alice' })), [made[3]!.id, made[1]!.id]);
      assert.deepEqual(ids(await t.store.listAuditEvents({ ...recent, actor: 'ADMIN' })), [made[2]!.id, made[0]!.id]);
      assert.deepEqual(ids(await t.store.listAuditEvents({ ...recent, kind: 'task.created' })), [made[3]!.id, made[0]!.id]);
      assert.deepEqual(ids(await t.store.listAuditEvents({ ...recent, family: 'task' })), [made[3]!.id, made[1]!.id, made[0]!.id]);
      assert.deepEqual(ids(await t.store.listAuditEvents({ ...recent, limit: 2 })), [made[3]!.id, made[2]!.id]);
      assert.deepEqual(ids(await t.store.listAuditEvents({ ...recent, limit: 2, before: made[2]!.id })), [made[1]!.id, made[0]!.id]);
      assert.deepEqual(await t.store.listAuditEvents({ since: new Date(Date.now() + 60_000) }), []);
      assert.deepEqual(ids(await t.store.listAuditEvents({ ...recent, until: made[0]!.at, kind: 'task.created' })), []);
      assert.deepEqual(ids(await t.store.listAuditEvents({ until: new Date(Date.parse(made[3]!.at) + 1), kind: 'task.created', limit: 1 })), [made[3]!.id]);
    });

    it('events recorded by two nodes on one database land in one log', async () => {
      const other = await t.reopen();
      try {
        const a = await t.store.appendAuditEvent(event('machine.deregistered', { node: 'node-a' }));
        const b = await other.appendAuditEvent(event('machine.deregistered', { node: 'node-b' }));
        const seen = await t.store.listAuditEvents({ kind: 'machine.deregistered', limit: 2 });
        assert.deepEqual(seen.map((e) => [e.id, e.node]), [[b.id, 'node-b'], [a.id, 'node-a']]);
      } finally {
        await other.close();
      }
    });

    it('the schema refuses UPDATE and DELETE of an event (and TRUNCATE on PostgreSQL), from any connection', async () => {
      const kept = await t.store.appendAuditEvent(event('apikey.revoked'));
      await assert.rejects(rawStatement(kind, t, `UPDATE audit_events SET actor_name = 'someone else' WHERE id = ${kept.id}`), /append-only/);
      await assert.rejects(rawStatement(kind, t, `DELETE FROM audit_events WHERE id = ${kept.id}`), /append-only/);
      await assert.rejects(rawStatement(kind, t, 'DELETE FROM audit_events'), /append-only/);
      if (kind === 'postgres') await assert.rejects(rawStatement(kind, t, 'TRUNCATE audit_events'), /append-only/);
      const [after] = await t.store.listAuditEvents({ before: kept.id + 1, limit: 1 });
      assert.deepEqual(after, kept);
    });

    if (kind === 'postgres') {
      it('with the table owned by another role (docs/operations.md), Reef\'s role can append and read but not drop the trigger', async () => {
        const suffix = randomBytes(4).toString('hex');
        const [owner, app] = [`reef_audit_owner_${suffix}`, `reef_app_${suffix}`];
        await rawStatement(kind, t, `CREATE ROLE ${owner} NOLOGIN; CREATE ROLE ${app} LOGIN;
          ALTER TABLE audit_events OWNER TO ${owner}; GRANT SELECT, INSERT ON audit_events TO ${app};`);
        const url = new URL(t.location);
        url.username = app;
        const asApp = (statement: string) => rawStatement(kind, { ...t, location: url.toString() }, statement);
        try {
          await asApp(`INSERT INTO audit_events (at, node, actor_kind, kind) VALUES (now(), 'node-a', 'system', 'apikey.created')`);
          await assert.rejects(asApp('DROP TRIGGER audit_events_no_update_or_delete ON audit_events'), /must be owner/);
          await assert.rejects(asApp('ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_or_delete'), /must be owner/);
          await assert.rejects(asApp('DELETE FROM audit_events'), /permission denied|append-only/);
        } finally {
          await rawStatement(kind, t, `ALTER TABLE audit_events OWNER TO CURRENT_USER; REVOKE ALL ON audit_events FROM ${app}; DROP ROLE ${app}; DROP ROLE ${owner};`);
        }
      });
    }
  });
});

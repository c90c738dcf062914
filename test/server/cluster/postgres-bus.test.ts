// The cluster bus on a real PostgreSQL: what one node publishes reaches the others (not
// itself), deduplicated and batched, and large batches are split under NOTIFY's limit.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { ClusterEvent } from '../../../src/server/cluster/bus.js';
import { payloads, PostgresBus } from '../../../src/server/cluster/postgres-bus.js';
import { silentLogger } from '../../../src/logging.js';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.js';
import { waitFor } from '../../e2e/harness.js';

describe('PostgresBus', () => {
  let db: TestDatabase;
  let a: PostgresBus;
  let b: PostgresBus;
  const atA: unknown[] = [];
  const atB: unknown[] = [];
  let notifications = 0;
  let reconnectsAtB = 0;
  let spy: pg.Client;

  before(async () => {
    db = await createTestDatabase({ empty: true });
    a = await PostgresBus.open(db.url, 'node-a/1', silentLogger);
    b = await PostgresBus.open(db.url, 'node-b/1', silentLogger);
    a.subscribe((e) => atA.push(e));
    b.subscribe((e) => atB.push(e));
    spy = new pg.Client({ connectionString: db.url });
    await spy.connect();
    spy.on('notification', () => notifications++);
    await spy.query('LISTEN reef_cluster');
  });
  after(async () => {
    await a.close();
    await b.close();
    await spy.end();
    await db.drop();
  });

  it('delivers to the other nodes and not to the sender', async () => {
    a.publish({ kind: 'work' });
    await waitFor('b to hear it', async () => atB.length === 1, 5000);
    assert.deepEqual(atB, [{ kind: 'work' }]);
    assert.deepEqual(atA, []);
  });

  it('tells its observers what it sent and received, with the time from publishing to arrival', async () => {
    const sent: number[] = [];
    const received: { events: number; lagMs: number | undefined }[] = [];
    a.observe({ sent: (events) => sent.push(events), received: () => {}, reconnected: () => {} });
    b.observe({ sent: () => {}, received: (events, lagMs) => received.push({ events, lagMs }), reconnected: () => (reconnectsAtB += 1) });
    a.publish({ kind: 'cancel', taskId: 'T-000009' });
    a.publish({ kind: 'work' });
    await waitFor('b to hear it', async () => received.length === 1, 5000);
    assert.deepEqual(sent, [2]);
    assert.equal(received[0]!.events, 2);
    const lag = received[0]!.lagMs;
    assert.ok(lag !== undefined && lag >= 0 && lag < 5000, `lag ${lag} ms`);
    assert.equal(a.connected, true);
  });

  it('sends a burst of events as few notifications, each event once', async () => {
    atB.length = 0;
    notifications = 0;
    for (let i = 0; i < 500; i++) {
      a.publish({ kind: 'log', taskId: `T-${String(i % 100).padStart(6, '0')}` });
      a.publish({ kind: 'work' });
    }
    await waitFor('b to hear all of it', async () => atB.length >= 101, 5000);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(atB.length, 101, '100 distinct log events and one work event');
    assert.ok(notifications <= 2, `${notifications} notifications`);
  });

  it('splits envelopes below the 8000-byte NOTIFY limit without losing events', () => {
    const events: ClusterEvent[] = Array.from({ length: 2000 }, (_, i) => ({ kind: 'changed', taskId: `T-${String(i).padStart(6, '0')}` }));
    const out = payloads('node-a/1', events);
    assert.ok(out.length > 1);
    for (const p of out) assert.ok(Buffer.byteLength(p.text) < 8000, `${Buffer.byteLength(p.text)} bytes`);
    assert.deepEqual(out.flatMap((p) => (JSON.parse(p.text) as { events: ClusterEvent[] }).events), events);
    assert.deepEqual(out.map((p) => p.events), out.map((p) => (JSON.parse(p.text) as { events: ClusterEvent[] }).events.length));
  });

  it('reconnects after its connection is killed and tells listeners to resync', async () => {
    atB.length = 0;
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'reef-bus' AND datname = current_database()`);
    await admin.end();
    await waitFor('b to resync', async () => atB.some((e) => (e as ClusterEvent | { kind: 'resync' }).kind === 'resync'), 10_000);
    await waitFor('a to be back too', async () => {
      a.publish({ kind: 'cancel', taskId: 'T-000001' });
      await new Promise((r) => setTimeout(r, 100));
      return atB.some((e) => (e as ClusterEvent).kind === 'cancel');
    }, 10_000);
    assert.ok(reconnectsAtB >= 1, 'the observer heard of the reconnection');
  });
});

// How server nodes divide work through the store: node membership, tentacle links,
// claims under leases. On PostgreSQL each node is its own Store (its own connections), as
// separate server processes would be; SQLite runs the same rules for its single node.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { Coordination, WorkKey } from '../../../src/server/store/coordination.js';
import type { Machine, Store } from '../../../src/server/store/types.js';
import { forEachStore, target, type TempStore } from './helpers.js';

const LEASE = { leaseMs: 60_000, staleAfterMs: 15_000, limit: 1000 };
const keys = (work: WorkKey[]) => work.map((w) => `${w.taskId}/${w.machineId}`).sort();

forEachStore((kind, open) => {
  describe(`${kind} store: coordination between server nodes`, () => {
    let t: TempStore;
    let stores: Store[];
    let a: Coordination;
    let b: Coordination;
    let c: Coordination;
    before(async () => {
      t = await open();
      stores = [t.store, await t.reopen(), await t.reopen()];
      [a, b, c] = stores.map((s) => s.coordination) as [Coordination, Coordination, Coordination];
      for (const [name, co] of [['A', a], ['B', b], ['C', c]] as const) {
        await co.joinNode({ name, incarnation: `${name}-1`, info: { version: 'test', httpsPort: 1 } });
      }
    });
    after(async () => {
      await Promise.all(stores.slice(1).map((s) => s.close()));
      await t.cleanup();
    });

    /** A machine and a task on it; claims of earlier tests are finished first. */
    async function taskOn(machine: Machine, count = 1): Promise<WorkKey[]> {
      const work: WorkKey[] = [];
      for (let i = 0; i < count; i++) {
        const task = await t.store.createTask({ kind: 'health-check', spec: {}, target: {}, machineIds: [machine.id] });
        work.push({ taskId: task.id, machineId: machine.id });
      }
      return work;
    }

    async function finishAll(work: WorkKey[]): Promise<void> {
      for (const w of work) {
        await t.store.finishTaskMachine(w.taskId, w.machineId, { state: 'Success' });
        await t.store.finishTask(w.taskId, { state: 'Success' });
      }
    }

    it('lists joined nodes as alive with their info and link counts; a second process under one name is detected', async () => {
      const m = await t.store.createMachine(target('listed'));
      await b.addLink('B', m.thumbprint, 'tcp');
      const nodes = await a.listNodes(15_000);
      assert.deepEqual(nodes.map((n) => [n.name, n.alive, n.connectedTentacles]), [['A', true, 0], ['B', true, 1], ['C', true, 0]]);
      assert.deepEqual(nodes[0]!.info, { version: 'test', httpsPort: 1 });
      assert.equal(await a.heartbeatNode('A', 'A-1', { version: 'test', httpsPort: 2 }), true);
      assert.equal((await a.listNodes(15_000))[0]!.info.httpsPort, 2);
      assert.equal(await a.heartbeatNode('A', 'another-process', {}), false);
      await b.removeLink('B', m.thumbprint);
    });

    it('records and removes many links in one call, the latest carrier winning', async () => {
      const m1 = await t.store.createMachine(target('batch-1'));
      const m2 = await t.store.createMachine(target('batch-2'));
      await b.addLink('B', m1.thumbprint, 'tcp');
      await b.addLinks('B', [{ thumbprint: m1.thumbprint, carrier: 'websocket' }, { thumbprint: m2.thumbprint, carrier: 'sni' }]);
      const mine = (await a.listLinks(15_000)).filter((l) => [m1.thumbprint, m2.thumbprint].includes(l.thumbprint));
      assert.deepEqual(mine.map((l) => [l.thumbprint, l.node, l.carrier]).sort(), [[m1.thumbprint, 'B', 'websocket'], [m2.thumbprint, 'B', 'sni']].sort());
      await b.addLinks('B', []);
      await b.removeLinks('B', [m1.thumbprint, m2.thumbprint]);
      await b.removeLinks('B', []);
      assert.deepEqual(await a.linkHolders(m1.thumbprint, 15_000), []);
      assert.deepEqual(await a.linkHolders(m2.thumbprint, 15_000), []);
    });

    it('gives work for a tentacle to the node it is connected to, and to no other', async () => {
      const m = await t.store.createMachine(target('on-b'));
      await b.addLink('B', m.thumbprint, 'tcp');
      const work = await taskOn(m, 3);
      assert.deepEqual(await a.claimWork('A', LEASE), []);
      assert.deepEqual(await c.claimWork('C', LEASE), []);
      assert.deepEqual(keys(await b.claimWork('B', LEASE)), keys(work));
      assert.deepEqual(await b.claimWork('B', LEASE), [], 'a live claim is not handed out again');
      await finishAll(work);
      await b.removeLink('B', m.thumbprint);
    });

    it('lets any node claim work for a tentacle connected nowhere, or for a listening one, exactly once', async () => {
      const offline = await t.store.createMachine(target('nowhere'));
      const listening = await t.store.createMachine(target('dialled', { commsStyle: 'listening', endpoint: { host: '127.0.0.1', port: 1 } }));
      const work = [...(await taskOn(offline, 20)), ...(await taskOn(listening, 20))];
      const claimed = await Promise.all([a.claimWork('A', LEASE), b.claimWork('B', LEASE), c.claimWork('C', LEASE)]);
      assert.deepEqual(keys(claimed.flat()), keys(work), 'every row claimed by exactly one node');
      await finishAll(work);
    });

    it('divides many rows between nodes claiming in small batches at once, never twice', async () => {
      const m = await t.store.createMachine(target('many'));
      const work = await taskOn(m, 60);
      const claimed: WorkKey[] = [];
      await Promise.all(
        [a, b, c].map(async (co, i) => {
          for (;;) {
            const got = await co.claimWork('ABC'[i]!, { ...LEASE, limit: 7 });
            if (got.length === 0) return;
            claimed.push(...got);
          }
        }),
      );
      assert.equal(claimed.length, 60);
      assert.deepEqual(keys(claimed), keys(work));
      await finishAll(work);
    });

    it('lets another node take work over when its lease lapses; the old owner no longer renews it', async () => {
      const m = await t.store.createMachine(target('lapsing'));
      const work = await taskOn(m);
      assert.equal((await a.claimWork('A', { ...LEASE, leaseMs: 200 })).length, 1);
      assert.deepEqual(await b.claimWork('B', LEASE), [], 'not while the lease holds');
      await sleep(400);
      assert.deepEqual(keys(await b.claimWork('B', LEASE)), keys(work));
      assert.deepEqual(await a.renewLeases('A', 60_000), [], 'A learns it lost the work');
      assert.deepEqual(keys(await b.renewLeases('B', 60_000)), keys(work));
      await finishAll(work);
      assert.deepEqual(await b.renewLeases('B', 60_000), [], 'finished work is not owned any more');
    });

    it('releases work for the next claim, and a rejoining node releases what its earlier process held', async () => {
      const m = await t.store.createMachine(target('released'));
      const work = await taskOn(m, 2);
      assert.equal((await a.claimWork('A', LEASE)).length, 2);
      assert.equal(await b.releaseWork('B', work[0]!), false, 'only the owner releases');
      assert.equal(await a.releaseWork('A', work[0]!), true);
      assert.deepEqual(keys(await c.claimWork('C', LEASE)), keys([work[0]!]));
      await a.joinNode({ name: 'A', incarnation: 'A-2', info: {} });
      assert.deepEqual(keys(await c.claimWork('C', LEASE)), keys([work[1]!]));
      assert.equal(await a.unfinishedMachines(work[0]!.taskId), 1);
      await finishAll(work);
      assert.equal(await a.unfinishedMachines(work[0]!.taskId), 0);
    });

    it('stops counting the links of a node whose heartbeat went stale, or that left', async () => {
      const m = await t.store.createMachine(target('stale-link'));
      await b.addLink('B', m.thumbprint, 'tcp');
      assert.deepEqual(await a.linkHolders(m.thumbprint, 15_000), ['B']);
      await sleep(300);
      assert.deepEqual(await a.linkHolders(m.thumbprint, 200), [], 'B has not beaten for longer than the stale cutoff');
      const work = await taskOn(m);
      assert.deepEqual(keys(await a.claimWork('A', { ...LEASE, staleAfterMs: 200 })), keys(work), "B's link no longer keeps the work");
      await c.leaveNode('C');
      const nodes = await a.listNodes(15_000);
      assert.equal(nodes.find((n) => n.name === 'C')!.alive, false);
      assert.notEqual(nodes.find((n) => n.name === 'C')!.stoppedAt, null);
      await finishAll(work);
    });

    it('hands out a shared setting proposed by the first node to every later one', async () => {
      const values = await Promise.all([a.sharedSetting('k', 'one'), b.sharedSetting('k', 'two')]);
      assert.equal(values[0], values[1]);
      assert.equal(await c.sharedSetting('k', 'three'), values[0]);
      assert.equal(await c.getSharedSetting('k'), values[0]);
      assert.equal(await c.getSharedSetting('missing'), null);
    });
  });
});

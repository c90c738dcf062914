// Several server nodes on one database race for the same names and numbers. Each node is
// its own Store (its own connections); the answers must be those of some serial order.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Store } from '../../../src/server/store/types.js';
import { forEachStore, target, thumbprint, type TempStore } from './helpers.js';

const NODES = 4;

forEachStore((kind, open) => {
  describe(`${kind} store: several nodes at once`, () => {
    let t: TempStore;
    let nodes: Store[];
    before(async () => {
      t = await open();
      nodes = [t.store];
      while (nodes.length < NODES) nodes.push(await t.reopen());
    });
    after(async () => {
      await Promise.all(nodes.slice(1).map((n) => n.close()));
      await t.cleanup();
    });

    it('creates an environment once when every node ensures it', async () => {
      const made = await Promise.all(nodes.map((n, i) => n.ensureEnvironment(i % 2 ? 'Racing' : 'RACING')));
      assert.equal(new Set(made.map((e) => e.id)).size, 1);
      assert.equal((await t.store.listEnvironments()).filter((e) => e.name.toLowerCase() === 'racing').length, 1);
    });

    it('lets one node register a name; the others get REEF_CONFLICT naming the winner', async () => {
      const results = await Promise.allSettled(
        nodes.map((n, i) => n.createMachine(target(i % 2 ? 'race-01' : 'RACE-01', { environments: [`Env ${i}`, 'Shared'] }))),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      assert.equal(won.length, 1, 'exactly one registration wins');
      const winner = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<Store['createMachine']>>>).value;
      for (const r of results) {
        if (r.status === 'rejected') {
          assert.equal((r.reason as { code?: string }).code, 'REEF_CONFLICT', String(r.reason));
          assert.match(String(r.reason), new RegExp(winner.id));
        }
      }
      assert.equal((await t.store.listMachines({ names: ['race-01'] })).length, 1);
    });

    it('lets one node register a thumbprint under different names', async () => {
      const tp = thumbprint();
      const results = await Promise.allSettled(nodes.map((n, i) => n.createMachine(target(`tp-race-${i}`, { thumbprint: tp }))));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code?: string }).code, 'REEF_CONFLICT');
    });

    it('upserts one machine when every node force-registers it', async () => {
      const tp = thumbprint();
      const results = await Promise.all(nodes.map((n, i) => n.upsertMachine(target('upsert-race', { thumbprint: tp, roles: [`r${i}`] }))));
      assert.equal(results.filter((r) => r.created).length, 1);
      assert.equal(new Set(results.map((r) => r.machine.id)).size, 1);
      assert.equal((await t.store.getMachine('upsert-race'))!.roles.length, 1, 'the last writer set the roles');
    });

    it('numbers tasks created on every node without gaps or repeats', async () => {
      const m = await t.store.createMachine(target('numbered'));
      const first = Number((await t.store.createTask({ kind: 'run-script', spec: {}, target: {}, machineIds: [m.id] })).id.slice(2));
      const ids = (
        await Promise.all(
          nodes.map(async (n) => {
            const mine: string[] = [];
            for (let i = 0; i < 15; i++) {
              mine.push((await n.createTask({ kind: 'run-script', spec: {}, target: {}, machineIds: [m.id] })).id);
            }
            return mine;
          }),
        )
      ).flat();
      const nums = ids.map((id) => Number(id.slice(2))).sort((a, b) => a - b);
      assert.deepEqual(nums, Array.from({ length: NODES * 15 }, (_, i) => first + 1 + i));
    });

    it('applies a state transition once when every node tries it', async () => {
      const m = await t.store.createMachine(target('transition-race'));
      const task = await t.store.createTask({ kind: 'run-script', spec: {}, target: {}, machineIds: [m.id] });
      const started = await Promise.all(nodes.map((n) => n.startTask(task.id)));
      assert.equal(started.filter(Boolean).length, 1);
      const finished = await Promise.all(nodes.map((n) => n.finishTaskMachine(task.id, m.id, { state: 'Success', exitCode: 0 })));
      assert.equal(finished.filter(Boolean).length, 1);
    });
  });
});

/**
 * Tasks of kind upgrade-tentacle are stored on both stores: since migration 012 the kind is
 * checked by src/server/store/input.ts, not by a CHECK listing the kinds (migration-012.test.ts
 * checks that the SQLite rebuild keeps tasks, machine runs and log lines).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { forEachStore, target } from './helpers.js';

forEachStore((kind, open) => {
  describe(`${kind}: upgrade-tentacle tasks`, () => {
    it('are stored and read back', async () => {
      const { store, cleanup } = await open();
      try {
        const machine = await store.createMachine(target('up-01'));
        const task = await store.createTask({ kind: 'upgrade-tentacle', spec: { rollbackAfterSeconds: 120, maxParallel: 10 }, target: { machines: ['up-01'] }, machineIds: [machine.id] });
        assert.equal((await store.getTask(task.id))?.kind, 'upgrade-tentacle');
      } finally {
        await cleanup();
      }
    });
  });
});

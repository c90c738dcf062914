import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Machine, Store } from '../../../src/server/store/types.js';
import { forEachStore, target, type TempStore } from './helpers.js';

forEachStore((kind, open) => {
  describe(`${kind} store: tasks`, () => {
    let t: TempStore;
    let store: Store;
    let web: Machine;
    let db: Machine;
    before(async () => {
      t = await open();
      store = t.store;
      web = await store.createMachine(target('web-01'));
      db = await store.createMachine(target('db-01', { roles: ['db'] }));
    });
    after(() => t.cleanup());

    const runScript = (machineIds: string[]) =>
      store.createTask({
        kind: 'run-script',
        spec: { syntax: 'bash', body: 'echo hi' },
        target: { environment: 'Production', role: 'web' },
        machineIds,
      });

    it('records lost contact while running, keeps it on a failed run, and takes one late report', async () => {
      const task = await runScript([web.id]);
      assert.equal(await store.setLostContact(task.id, web.id, '2026-12-05T10:00:00.000Z'), false, 'only while running');
      await store.startTaskMachine(task.id, web.id);
      await store.appendMachineLog(task.id, web.id, [{ tentacleSeq: 1, at: '2026-12-05T09:59:00.000Z', stream: 'stdout', text: 'a' }]);
      assert.equal(await store.setLostContact(task.id, web.id, '2026-12-05T10:00:00.000Z'), true);
      let m = (await store.getTask(task.id))!.machines[0]!;
      assert.equal(Date.parse(m.lostContactAt!), Date.parse('2026-12-05T10:00:00.000Z'));
      assert.equal(m.lostCursor, 1);
      assert.equal(await store.setLostContact(task.id, web.id, null), true, 'back in contact');
      assert.equal((await store.getTask(task.id))!.machines[0]!.lostContactAt, null);
      assert.deepEqual(await store.listLostContact(web.id), []);

      await store.setLostContact(task.id, web.id, '2026-12-05T10:05:00.000Z');
      assert.deepEqual((await store.listLostContact(web.id)).map((a) => a.state), ['Running']);
      await store.finishTaskMachine(task.id, web.id, { state: 'Failed', error: 'Lost contact' });
      assert.deepEqual((await store.listLostContact(web.id)).map((a) => [a.ticket, a.state]), [[m.ticket, 'Failed']]);
      assert.ok((await store.listLostContact()).some((a) => a.ticket === m.ticket));
      await store.appendMachineLog(task.id, web.id, [{ tentacleSeq: 2, at: '2026-12-05T10:06:00.000Z', stream: 'stdout', text: 'b' }]);
      const report = { state: 'Success' as const, exitCode: 0, error: null, at: '2026-12-05T10:07:00.000Z' };
      assert.equal(await store.recordLateReport(task.id, web.id, report), true);
      assert.equal(await store.recordLateReport(task.id, web.id, { ...report, exitCode: 9 }), false, 'once');
      m = (await store.getTask(task.id))!.machines[0]!;
      assert.deepEqual([m.state, m.lateState, m.lateExitCode, m.lateError, m.logCursor - m.lostCursor!], ['Failed', 'Success', 0, null, 1]);
      assert.equal(Date.parse(m.lateReportAt!), Date.parse(report.at));
      assert.deepEqual(await store.listLostContact(web.id), []);
    });

    it('creates numbered tasks with a Pending row and unique ticket per machine', async () => {
      const task = await runScript([web.id, db.id, web.id]);
      assert.match(task.id, /^T-\d{6}$/);
      assert.equal(task.state, 'Queued');
      assert.deepEqual(task.spec, { syntax: 'bash', body: 'echo hi' });
      assert.deepEqual(task.target, { environment: 'Production', role: 'web' });
      assert.deepEqual(
        task.machines.map((m) => [m.machineName, m.state, m.logCursor]),
        [
          ['db-01', 'Pending', 0],
          ['web-01', 'Pending', 0],
        ],
      );
      const tickets = task.machines.map((m) => m.ticket);
      assert.equal(new Set(tickets).size, 2);
      for (const ticket of tickets) assert.match(ticket, /^TKT-[A-Z2-7]{26}$/);
      assert.deepEqual(await store.getTaskMachineByTicket(tickets[0]!), task.machines[0]);
      assert.equal(await store.getTaskMachineByTicket('TKT-NOPE'), null);
      assert.deepEqual(await store.getTask(task.id), task);

      const next = await runScript([web.id]);
      assert.equal(Number(next.id.slice(2)), Number(task.id.slice(2)) + 1);
    });

    it('keeps spec and target JSON as written, key order included', async () => {
      const spec = { zeta: 1, alpha: { b: [1, 'x'], a: null }, mid: 'ü\n' };
      const task = await store.createTask({ kind: 'push-file', spec, target: { role: 'web', environment: 'Prod' }, machineIds: [] });
      const read = (await store.getTask(task.id))!;
      assert.equal(JSON.stringify(read.spec), JSON.stringify(spec));
      assert.equal(JSON.stringify(read.target), JSON.stringify({ role: 'web', environment: 'Prod' }));
    });

    it('refuses unknown machines and kinds without creating anything', async () => {
      const before = await store.listTasks({ limit: 1000 });
      await assert.rejects(runScript([web.id, 'm-gone']), { code: 'REEF_NOT_FOUND', message: /m-gone/ });
      await assert.rejects(
        store.createTask({ kind: 'dance' as 'run-script', spec: {}, target: {}, machineIds: [] }),
        { code: 'REEF_INVALID_ARGUMENT' },
      );
      assert.equal((await store.listTasks({ limit: 1000 })).length, before.length);
    });

    it('moves through legal transitions and answers false to illegal ones', async () => {
      const task = await runScript([web.id, db.id]);
      assert.equal(await store.finishTaskMachine(task.id, web.id, { state: 'Success', exitCode: 0 }), true, 'Pending -> final is legal');
      assert.equal(await store.startTaskMachine(task.id, web.id), false, 'finished cannot start');
      assert.equal(await store.finishTaskMachine(task.id, web.id, { state: 'Failed' }), false, 'finished cannot finish again');

      assert.equal(await store.startTask(task.id, '2024-01-01T00:00:00Z'), true);
      assert.equal(await store.startTask(task.id), false, 'already running');
      assert.equal(await store.startTaskMachine(task.id, db.id, '2024-01-01T00:00:01Z'), true);
      assert.equal(await store.startTaskMachine(task.id, db.id), false);
      assert.equal(
        await store.finishTaskMachine(task.id, db.id, { state: 'Failed', exitCode: 3, error: 'exit 3', at: '2024-01-01T00:00:02Z' }),
        true,
      );
      assert.equal(await store.finishTask(task.id, { state: 'Failed', error: '1 of 2 machines failed' }), true);
      assert.equal(await store.finishTask(task.id, { state: 'Success' }), false, 'finished task stays finished');
      assert.equal(await store.requestCancel(task.id), false, 'cannot cancel a finished task');

      const read = (await store.getTask(task.id))!;
      assert.equal(read.state, 'Failed');
      assert.equal(read.error, '1 of 2 machines failed');
      assert.equal(read.startedAt, '2024-01-01T00:00:00.000Z');
      assert.ok(read.finishedAt);
      const dbRow = read.machines.find((m) => m.machineId === db.id)!;
      assert.deepEqual(
        [dbRow.state, dbRow.exitCode, dbRow.error, dbRow.startedAt, dbRow.finishedAt],
        ['Failed', 3, 'exit 3', '2024-01-01T00:00:01.000Z', '2024-01-01T00:00:02.000Z'],
      );

      await assert.rejects(store.startTask('T-999999'), { code: 'REEF_NOT_FOUND' });
      await assert.rejects(store.startTaskMachine(task.id, 'm-none'), { code: 'REEF_NOT_FOUND' });
      await assert.rejects(store.finishTask(task.id, { state: 'Running' as 'Success' }), { code: 'REEF_INVALID_ARGUMENT' });
    });

    it('records a cancellation request once', async () => {
      const task = await runScript([web.id]);
      assert.equal(await store.requestCancel(task.id, '2024-02-02T00:00:00Z'), true);
      assert.equal(await store.requestCancel(task.id), false);
      assert.equal((await store.getTask(task.id))!.cancelRequestedAt, '2024-02-02T00:00:00.000Z');
      assert.equal(await store.finishTask(task.id, { state: 'Cancelled' }), true);
    });

    it('lists newest first with a state filter and a before cursor', async () => {
      const s = await open();
      try {
        const m = await s.store.createMachine(target('pager'));
        const ids: string[] = [];
        for (let i = 0; i < 7; i++) {
          const task = await s.store.createTask({ kind: 'health-check', spec: {}, target: {}, machineIds: [m.id] });
          ids.push(task.id);
          if (i % 2 === 0) await s.store.startTask(task.id);
        }
        const all = await s.store.listTasks();
        assert.deepEqual(all.map((x) => x.id), [...ids].reverse());
        const page1 = await s.store.listTasks({ limit: 3 });
        const page2 = await s.store.listTasks({ limit: 3, before: page1.at(-1)!.id });
        const page3 = await s.store.listTasks({ limit: 3, before: page2.at(-1)!.id });
        assert.deepEqual([...page1, ...page2, ...page3].map((x) => x.id), [...ids].reverse());
        const running = await s.store.listTasks({ state: 'Running' });
        assert.deepEqual(running.map((x) => x.id), [ids[6], ids[4], ids[2], ids[0]]);
        // Each task's machines are counted, not loaded.
        const other = await s.store.createMachine(target('pager-2'));
        const two = await s.store.createTask({ kind: 'health-check', spec: {}, target: {}, machineIds: [m.id, other.id] });
        const counted = await s.store.listTasks({ limit: 2 });
        assert.deepEqual(counted.map((x) => [x.id, x.machineCount]), [[two.id, 2], [ids[6], 1]]);
        assert.ok(!('machines' in counted[0]!));
        await assert.rejects(s.store.listTasks({ before: 'yesterday' }), { code: 'REEF_INVALID_ARGUMENT' });
        await assert.rejects(s.store.listTasks({ limit: 0 }), { code: 'REEF_INVALID_ARGUMENT' });
      } finally {
        await s.cleanup();
      }
    });

    it('finds unfinished tasks after a restart, and keeps history of deleted machines', async () => {
      const s = await open();
      try {
        const a = await s.store.createMachine(target('a'));
        const b = await s.store.createMachine(target('b'));
        const queued = await s.store.createTask({ kind: 'run-script', spec: {}, target: {}, machineIds: [a.id] });
        const running = await s.store.createTask({ kind: 'push-file', spec: {}, target: {}, machineIds: [a.id, b.id] });
        const done = await s.store.createTask({ kind: 'run-script', spec: {}, target: {}, machineIds: [b.id] });
        await s.store.startTask(running.id);
        await s.store.startTaskMachine(running.id, b.id);
        await s.store.finishTask(done.id, { state: 'Success' });
        await s.store.close();

        const reopened = await s.reopen();
        try {
          const unfinished = await reopened.listUnfinishedTasks();
          assert.deepEqual(unfinished.map((x) => [x.id, x.state]), [
            [queued.id, 'Queued'],
            [running.id, 'Running'],
          ]);
          assert.deepEqual(unfinished[1]!.machines.map((m) => [m.machineName, m.state]), [
            ['a', 'Pending'],
            ['b', 'Running'],
          ]);
          await reopened.deleteMachine(b.id);
          const kept = (await reopened.getTask(done.id))!;
          assert.deepEqual(kept.machines.map((m) => [m.machineId, m.machineName]), [[b.id, 'b']]);
          // Next number continues after a restart.
          const next = await reopened.createTask({ kind: 'run-script', spec: {}, target: {}, machineIds: [] });
          assert.equal(Number(next.id.slice(2)), Number(done.id.slice(2)) + 1);
        } finally {
          await reopened.close();
        }
      } finally {
        await s.cleanup();
      }
    });
  });
});

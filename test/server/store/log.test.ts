import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { logs } from '../../../src/server/store/logs.js';
import { connectPostgres } from '../../../src/server/store/postgres/database.js';
import type { Database } from '../../../src/server/store/sql.js';
import type { LogLine, Machine, Store, TentacleLogLine } from '../../../src/server/store/types.js';
import { forEachStore, target, type TempStore } from './helpers.js';

// Worker threads do not inherit the tsx loader: register it, then load the TypeScript file.
const WORKER_BOOT = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(
  new URL('./fixtures/append-worker.ts', import.meta.url).href,
)}); })`;

const line = (tentacleSeq: number, text = `line ${tentacleSeq}`): TentacleLogLine => ({
  tentacleSeq,
  at: '2024-03-01T00:00:00Z',
  stream: 'stdout',
  text,
});

async function readAll(store: Store, taskId: string): Promise<LogLine[]> {
  const all: LogLine[] = [];
  for (;;) {
    const page = await store.readLog(taskId, all.at(-1)?.seq ?? 0, 500);
    if (page.length === 0) return all;
    all.push(...page);
  }
}

function assertContiguous(lines: LogLine[]): void {
  assert.deepEqual(
    lines.map((l) => l.seq),
    lines.map((_, i) => i + 1),
    'task seqs are 1..n without gaps or repeats',
  );
}

forEachStore((kind, open) => {
  describe(`${kind} store: task log`, () => {
    let t: TempStore;
    let store: Store;
    let machines: Machine[];
    before(async () => {
      t = await open();
      store = t.store;
      machines = [];
      for (const name of ['m1', 'm2', 'm3', 'm4']) machines.push(await store.createMachine(target(name)));
    });
    after(() => t.cleanup());

    const newTask = () =>
      store.createTask({ kind: 'run-script', spec: {}, target: {}, machineIds: machines.map((m) => m.id) });

    it('skips lines at or below the cursor, so a retried fetch stores nothing twice', async () => {
      const task = await newTask();
      const m = machines[0]!.id;
      const first = await store.appendMachineLog(task.id, m, [line(1), line(2), line(3)]);
      assert.deepEqual(first.map((l) => [l.seq, l.text, l.machineId]), [
        [1, 'line 1', m],
        [2, 'line 2', m],
        [3, 'line 3', m],
      ]);
      assert.equal(first[0]!.at, '2024-03-01T00:00:00.000Z');
      assert.deepEqual(await store.appendMachineLog(task.id, m, [line(2), line(3)]), [], 'pure retry');
      const more = await store.appendMachineLog(task.id, m, [line(5), line(3), line(4), line(4)]);
      assert.deepEqual(more.map((l) => [l.seq, l.text]), [
        [4, 'line 4'],
        [5, 'line 5'],
      ], 'overlap dropped, unordered batch sorted, repeat in batch dropped');
      const tm = (await store.getTask(task.id))!.machines.find((x) => x.machineId === m)!;
      assert.equal(tm.logCursor, 5);
      assert.deepEqual(await store.appendMachineLog(task.id, m, []), []);
    });

    it('interleaves machine lines and task-level lines in one contiguous sequence', async () => {
      const task = await newTask();
      const [a, b] = [machines[0]!.id, machines[1]!.id];
      await store.appendTaskLog(task.id, null, 'info', 'Task started');
      await store.appendMachineLog(task.id, a, [line(1, 'a1'), line(2, 'a2')]);
      await store.appendMachineLog(task.id, b, [line(1, 'b1')]);
      const err = await store.appendTaskLog(task.id, b, 'error', 'b lost its connection; resuming', '2024-03-01T00:00:01Z');
      assert.equal(err.seq, 5);
      await store.appendMachineLog(task.id, b, [line(1, 'b1'), line(2, 'b2')]);
      const all = await readAll(store, task.id);
      assertContiguous(all);
      assert.deepEqual(all.map((l) => [l.machineId, l.stream, l.text]), [
        [null, 'info', 'Task started'],
        [a, 'stdout', 'a1'],
        [a, 'stdout', 'a2'],
        [b, 'stdout', 'b1'],
        [b, 'error', 'b lost its connection; resuming'],
        [b, 'stdout', 'b2'],
      ]);
      assert.deepEqual((await store.readLog(task.id, 4, 1)).map((l) => l.seq), [5]);
      assert.deepEqual(await store.readLog(task.id, 6), []);
    });

    it('refuses unknown tasks, machines and malformed lines', async () => {
      const task = await newTask();
      await assert.rejects(store.appendMachineLog('T-999999', machines[0]!.id, [line(1)]), { code: 'REEF_NOT_FOUND' });
      await assert.rejects(store.appendMachineLog(task.id, 'm-none', [line(1)]), { code: 'REEF_NOT_FOUND' });
      await assert.rejects(store.appendTaskLog('T-999999', null, 'info', 'x'), { code: 'REEF_NOT_FOUND' });
      await assert.rejects(store.appendMachineLog(task.id, machines[0]!.id, [line(0)]), { code: 'REEF_INVALID_ARGUMENT' });
      await assert.rejects(
        store.appendMachineLog(task.id, machines[0]!.id, [{ ...line(1), stream: 'stdin' as 'stdout' }]),
        { code: 'REEF_INVALID_ARGUMENT' },
      );
      assert.deepEqual(await store.readLog(task.id), [], 'nothing stored by the refused calls');
    });

    it('keeps seqs contiguous under concurrent appends for several machines', async () => {
      const task = await newTask();
      const perMachine = 60;
      await Promise.all(
        machines.map(async (m) => {
          for (let from = 1; from <= perMachine; from += 7) {
            const batch = [];
            for (let s = Math.max(1, from - 2); s < Math.min(from + 7, perMachine + 1); s++) batch.push(line(s, `${m.name}:${s}`));
            await store.appendMachineLog(task.id, m.id, batch);
          }
        }),
      );
      const all = await readAll(store, task.id);
      assertContiguous(all);
      assert.equal(all.length, perMachine * machines.length);
      for (const m of machines) {
        const mine = all.filter((l) => l.machineId === m.id).map((l) => l.text);
        assert.deepEqual(mine, Array.from({ length: perMachine }, (_, i) => `${m.name}:${i + 1}`), `${m.name} in order`);
      }
    });

    it('keeps seqs contiguous when separate connections append at once', async () => {
      const lines = 300;
      /** One task appended to by a worker per machine, each on its own connection, started together. */
      const appendAtOnce = async () => {
        const task = await newTask();
        const workers = machines.map(
          (m) =>
            new Worker(WORKER_BOOT, {
              eval: true,
              workerData: { location: t.location, taskId: task.id, machineId: m.id, lines, batch: 3 },
            }),
        );
        const exited = workers.map(
          (w) =>
            new Promise<void>((resolve, reject) => {
              w.once('error', reject);
              w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}`))));
            }),
        );
        // Start them together once every connection is open, so their transactions interleave.
        await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
        for (const w of workers) w.postMessage('go');
        await Promise.all(exited);
        const all = await readAll(store, task.id);
        assertContiguous(all);
        assert.equal(all.length, lines * machines.length);
        for (const m of machines) {
          const mine = all.filter((l) => l.machineId === m.id).map((l) => l.text);
          assert.deepEqual(mine, Array.from({ length: lines }, (_, i) => `${m.id} line ${i + 1}`));
        }
        const cursors = (await store.getTask(task.id))!.machines.map((x) => x.logCursor);
        assert.deepEqual(cursors, machines.map(() => lines));
        return all.filter((l, i) => i > 0 && l.machineId !== all[i - 1]!.machineId).length;
      };
      // The point is appends that interleave; on a busy machine a worker can finish before
      // the next one gets a core, so a run that did not interleave is run again (bounded).
      let switches = 0;
      for (let attempt = 1; attempt <= 5 && switches <= machines.length; attempt++) switches = await appendAtOnce();
      assert.ok(switches > machines.length, `appends interleaved (${switches} switches between machines in the last of 5 runs)`);
    });

    it('stores each line once when several nodes carry the same machine\'s output at once', async () => {
      // A failover: the tentacle's retried fetches reach other nodes while the first one is
      // still storing. Each node has its own connections.
      const task = await newTask();
      const m = machines[0]!.id;
      const nodes = [store, await t.reopen(), await t.reopen()];
      try {
        const lines = 120;
        await Promise.all(
          nodes.map(async (node, n) => {
            for (let from = 1 + n; from <= lines; from += 5) {
              const batch = [];
              for (let s = Math.max(1, from - 4); s < Math.min(from + 5, lines + 1); s++) batch.push(line(s, `m:${s}`));
              await node.appendMachineLog(task.id, m, batch);
            }
          }),
        );
        const all = await readAll(store, task.id);
        assertContiguous(all);
        assert.deepEqual(all.map((l) => l.text), Array.from({ length: lines }, (_, i) => `m:${i + 1}`));
        assert.equal((await store.getTask(task.id))!.machines.find((x) => x.machineId === m)!.logCursor, lines);
      } finally {
        await Promise.all(nodes.slice(1).map((node) => node.close()));
      }
    });

    it('numbers the task-level lines of several nodes appending at once in one sequence with the machines\' output', async () => {
      // A fan-out on a cluster: every node stores its machines' result lines in one task at
      // once, all of them at the task row's lock (on PostgreSQL each line is a statement of
      // its own, not a transaction), while a script's output goes in under its machine's lock.
      const task = await newTask();
      const nodes = [store, await t.reopen(), await t.reopen()];
      try {
        const perNode = 40;
        const output = machines[3]!.id;
        const [taskLines] = await Promise.all([
          Promise.all(
            nodes.flatMap((node, n) =>
              Array.from({ length: perNode }, (_, i) => node.appendTaskLog(task.id, machines[n]!.id, 'info', `node ${n} line ${i}`)),
            ),
          ),
          (async () => {
            for (let s = 1; s <= 30; s += 3) await store.appendMachineLog(task.id, output, [line(s), line(s + 1), line(s + 2)]);
          })(),
        ]);
        const all = await readAll(store, task.id);
        assertContiguous(all);
        assert.equal(all.length, nodes.length * perNode + 30);
        const stored = new Map(all.map((l) => [l.seq, l.text]));
        for (const l of taskLines) assert.equal(stored.get(l.seq), l.text, `line ${l.seq} is stored as returned`);
        assert.deepEqual(all.filter((l) => l.machineId === output).map((l) => l.text), Array.from({ length: 30 }, (_, i) => `line ${i + 1}`));
      } finally {
        await Promise.all(nodes.slice(1).map((node) => node.close()));
      }
    });

    if (kind === 'postgres') {
      it('stores a task-level line in one statement, outside any transaction (the task row is not held for a round trip)', async () => {
        const task = await newTask();
        const database = await connectPostgres(t.location);
        try {
          const noTransactions: Database = {
            dialect: database.dialect,
            all: (q) => database.all(q),
            one: (q) => database.one(q),
            run: (q) => database.run(q),
            script: (text) => database.script(text),
            transaction: () => Promise.reject(new Error('appendTaskLog opened a transaction')),
            close: () => database.close(),
          };
          const stored = await logs(noTransactions).appendTaskLog(task.id, null, 'info', 'Healthy');
          assert.deepEqual((await store.readLog(task.id)).map((l) => [l.seq, l.text]), [[stored.seq, 'Healthy']]);
          await assert.rejects(logs(noTransactions).appendTaskLog('T-999999', null, 'info', 'x'), { code: 'REEF_NOT_FOUND' });
        } finally {
          await database.close();
        }
      });
    }

    it('property: any mix of overlapping, repeated, reordered batches stores each line once, in order', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              machine: fc.integer({ min: 0, max: 3 }),
              seqs: fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 12 }),
            }),
            { maxLength: 25 },
          ),
          async (batches) => {
            const task = await newTask();
            const cursor = [0, 0, 0, 0];
            const expected: string[][] = [[], [], [], []];
            for (const { machine, seqs } of batches) {
              const m = machines[machine]!;
              // Model: lines above the cursor, deduplicated, ascending.
              const fresh = [...new Set(seqs)].filter((s) => s > cursor[machine]!).sort((x, y) => x - y);
              expected[machine]!.push(...fresh.map((s) => `${machine}:${s}`));
              if (fresh.length) cursor[machine] = fresh.at(-1)!;
              const stored = await store.appendMachineLog(task.id, m.id, seqs.map((s) => line(s, `${machine}:${s}`)));
              assert.deepEqual(stored.map((l) => l.text), fresh.map((s) => `${machine}:${s}`));
            }
            const all = await readAll(store, task.id);
            assertContiguous(all);
            machines.forEach((m, i) => {
              assert.deepEqual(all.filter((l) => l.machineId === m.id).map((l) => l.text), expected[i]);
            });
          },
        ),
        { numRuns: 40 },
      );
    });

    it('keeps a machine run within its log quota: one line says the rest is dropped, the cursor still advances', async () => {
      const task = await newTask();
      const m = machines[0]!.id;
      const kib = (seq: number) => line(seq, 'x'.repeat(1024));
      const quota = { quotaBytes: 3 * 1024 };
      assert.equal((await store.appendMachineLog(task.id, m, [kib(1), kib(2)], quota)).length, 2);
      const crossing = await store.appendMachineLog(task.id, m, [kib(3), kib(4), kib(5)], quota);
      assert.deepEqual(crossing.map((l) => l.stream), ['stdout', 'info']);
      assert.match(crossing[1]!.text, /^Log quota reached: this machine's log holds 3\.0 KiB of output and the next line would pass the quota of 3\.0 KiB/);
      // Later batches, also through another store on the database (a restarted server), store nothing more.
      const restarted = await t.reopen();
      try {
        assert.deepEqual(await restarted.appendMachineLog(task.id, m, [kib(6), line(7, 'tiny')], quota), []);
      } finally {
        await restarted.close();
      }
      const tm = (await store.getTask(task.id))!.machines.find((x) => x.machineId === m)!;
      assert.deepEqual([tm.logCursor, tm.logBytes, tm.droppedLogLines, tm.droppedLogBytes], [7, 3 * 1024, 4, 3 * 1024 + 4]);
      assert.equal((await readAll(store, task.id)).length, 4);
      // Other machines of the task have their own quota.
      assert.equal((await store.appendMachineLog(task.id, machines[1]!.id, [kib(1)], quota)).length, 1);
    });

    it('reads the log in pages bounded by bytes as well as lines, at least one line each', async () => {
      const task = await newTask();
      const m = machines[0]!.id;
      // 600 KiB of UTF-8 in 300 Ki characters: pages are measured in bytes, not characters.
      const big = (seq: number) => line(seq, 'é'.repeat(300 * 1024));
      await store.appendMachineLog(task.id, m, [big(1), big(2), line(3), line(4), big(5)]);
      const pages: number[][] = [];
      for (let after = 0; ; ) {
        const page = await store.readLog(task.id, after, 1000);
        if (page.length === 0) break;
        pages.push(page.map((l) => l.seq));
        after = page.at(-1)!.seq;
      }
      assert.deepEqual(pages, [[1], [2, 3, 4], [5]], 'at most 1 MiB of text per page');
      assert.deepEqual((await store.readLog(task.id, 2, 1000, 100)).map((l) => l.seq), [3, 4], 'small lines within a small budget');
      assert.deepEqual((await store.readLog(task.id, 0, 1000, 100)).map((l) => l.seq), [1], 'one line even over the budget');
      assert.deepEqual((await store.readLog(task.id, 3, 1)).map((l) => l.seq), [4]);
      const [first] = await store.readLog(task.id, 0, 1);
      assert.equal(first!.text, 'é'.repeat(300 * 1024));
    });
  });
});

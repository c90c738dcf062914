import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { readEvents } from '../../../src/api/client.js';
import type { LogLineView, LogPage, TaskView, UploadedFile } from '../../../src/api/contract.js';
import type { LogLine } from '../../../src/server/store/types.js';
import { eventually, startHarness, thumbprint, type Harness } from './harness.js';

type Event = { event: string; data: string; id?: string };

/** Reads events from a stream one at a time. */
class EventReader {
  private readonly iterator: AsyncGenerator<Event>;
  constructor(readonly res: IncomingMessage) {
    this.iterator = readEvents(res);
  }
  async next(): Promise<Event | undefined> {
    const { value, done } = await this.iterator.next();
    return done ? undefined : value;
  }
  async logSeqs(count: number, options: { skipStates?: boolean } = {}): Promise<number[]> {
    const seqs: number[] = [];
    while (seqs.length < count) {
      const e = await this.next();
      assert.ok(e, 'stream ended early');
      if (options.skipStates && e.event === 'state') continue;
      assert.equal(e.event, 'log', `expected a log event, got ${e.event}`);
      const line = JSON.parse(e.data) as LogLineView;
      assert.equal(e.id, String(line.seq));
      seqs.push(line.seq);
    }
    return seqs;
  }
  async expectState(state: string): Promise<TaskView> {
    const e = await this.next();
    assert.ok(e, 'stream ended early');
    assert.equal(e.event, 'state');
    const view = JSON.parse(e.data) as TaskView;
    assert.equal(view.state, state);
    return view;
  }
  async expectEnd(): Promise<void> {
    const e = await this.next();
    assert.equal(e?.event, 'end');
    assert.equal(await this.next(), undefined, 'the stream closes after end');
  }
}

describe('api tasks and logs', () => {
  let h: Harness;
  const post = (path: string, body: unknown) => h.raw('POST', path, { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const script = (target: unknown, body = 'echo hi') => ({ kind: 'run-script', target, script: { body } });

  before(async () => {
    h = await startHarness({ sseHeartbeatMs: 100 });
    for (const name of ['web-1', 'web-2']) {
      await h.store.createMachine({ name, kind: 'target', thumbprint: thumbprint(), commsStyle: 'polling', environments: ['Production'], roles: ['web'] });
    }
    await h.store.createMachine({ name: 'db-1', kind: 'target', thumbprint: thumbprint(), commsStyle: 'polling', environments: ['Production'], roles: ['db'] });
    await h.store.createMachine({ name: 'builder', kind: 'worker', thumbprint: thumbprint(), commsStyle: 'polling', workerPools: ['Builders'] });
  });
  after(() => h.close());

  /**
   * A task on web-1, once the engine has claimed it: Running, waiting for a tentacle that
   * never polls here, so its log and final state are the test's to write.
   */
  async function newTask(): Promise<TaskView> {
    const r = await post('/api/tasks', script({ machines: ['web-1'] }));
    assert.equal(r.status, 201);
    const id = (r.json as TaskView).id;
    await eventually(async () => (await h.store.getTask(id))?.machines[0]?.state === 'Running', `${id} to be claimed`);
    return h.client.json<TaskView>('GET', `/api/tasks/${id}`);
  }
  async function log(taskId: string, count: number, prefix = 'line'): Promise<LogLine[]> {
    const lines: LogLine[] = [];
    for (let i = 0; i < count; i++) lines.push(await h.store.appendTaskLog(taskId, null, 'info', `${prefix} ${i}`));
    return lines;
  }
  async function finish(taskId: string, state: 'Success' | 'Failed' = 'Success'): Promise<void> {
    await h.store.finishTask(taskId, { state });
    h.engine.events.emit('changed', taskId);
  }
  function stream(taskId: string, query = '', headers: Record<string, string> = {}): Promise<EventReader> {
    return h.client
      .request('GET', `/api/tasks/${taskId}/log/stream${query}`, { timeoutMs: 0, headers: { accept: 'text/event-stream', ...headers } })
      .then((res) => {
        assert.match(String(res.headers['content-type']), /^text\/event-stream/);
        assert.equal(res.headers['cache-control'], 'no-store');
        return new EventReader(res);
      });
  }

  it('creates run-script tasks by environment + role, by machine names and by worker pool', async () => {
    const byRole = await post('/api/tasks', script({ environment: 'production', role: 'web' }));
    assert.equal(byRole.status, 201);
    const view = byRole.json as TaskView;
    assert.match(view.id, /^T-\d{6}$/);
    assert.equal(view.kind, 'run-script');
    assert.equal(view.state, 'Queued');
    assert.deepEqual(view.machines.map((m) => m.machineName).sort(), ['web-1', 'web-2']);
    assert.equal(view.machines[0]!.state, 'Pending');
    assert.ok(!('ticket' in view.machines[0]!));
    assert.deepEqual((view.spec as { script: unknown }).script, { syntax: 'bash', body: 'echo hi' });

    const byName = await post('/api/tasks', script({ machines: ['DB-1'] }));
    assert.equal(byName.status, 201);
    assert.deepEqual((byName.json as TaskView).machines.map((m) => m.machineName), ['db-1']);
    const byPool = await post('/api/tasks', { kind: 'health-check', target: { workerPool: 'Builders' } });
    assert.equal(byPool.status, 201);
    assert.equal(byPool.json.kind, 'health-check');
  });

  it('refuses bad task requests with a message per field', async () => {
    const cases: Array<[unknown, number, RegExp]> = [
      [script({ environment: 'Production', role: 'web' }, ''), 400, /script\.body: must not be empty/],
      [script({ environment: '' }), 400, /target\.environment: must not be empty/],
      [script({ workerPool: '  ' }), 400, /target\.workerPool: must not be empty/],
      [script({ machines: [] }), 400, /target\.machines: must name at least one machine/],
      [script({}), 400, /target: must have one of these forms: \{environment\} \| \{workerPool\} \| \{machines\}/],
      [script({ environment: 'Production', colour: 'red' }), 400, /target\.colour: is not a known field/],
      [{ kind: 'dance', target: { machines: ['web-1'] } }, 400, /kind: must be one of run-script, push-file, health-check/],
      [{ ...script({ machines: ['web-1'] }), timeoutSeconds: -1 }, 400, /timeoutSeconds: /],
      [{ kind: 'run-script', target: { machines: ['web-1'] }, script: { syntax: 'cmd', body: 'x' } }, 400, /script\.syntax: must be one of bash, sh, powershell, not "cmd"/],
      [{ kind: 'push-file', target: { machines: ['web-1'] }, file: { sha256: 'abc', destination: 'relative/path' } }, 400, /file\.sha256: must be the lowercase hex SHA-256.*file\.destination: must be an absolute path/],
      [script({ environment: 'Narnia' }), 404, /^Environment "Narnia" does not exist\.$/],
      [script({ machines: ['web-1', 'ghost', 'spook'] }), 404, /^No machine is named "ghost", "spook"\.$/],
      [script({ environment: 'Production', role: 'nothing' }), 422, /^No deployment target in environment "Production" has the role "nothing"\.$/],
      [script({ workerPool: 'Testers' }), 404, /^Worker pool "Testers" does not exist\.$/],
    ];
    for (const [body, status, message] of cases) {
      const r = await post('/api/tasks', body);
      assert.equal(r.status, status, `${JSON.stringify(body)} -> ${r.text}`);
      assert.match(r.json.error.message, message, JSON.stringify(body));
    }
    const noMachines = await post('/api/tasks', script({ environment: 'Production', role: 'nothing' }));
    assert.equal(noMachines.json.error.code, 'REEF_NO_MACHINES');
  });

  it('creates push-file tasks only for uploaded files', async () => {
    const missing = await post('/api/tasks', { kind: 'push-file', target: { machines: ['web-1'] }, file: { sha256: 'a'.repeat(64), destination: '/opt/app.tgz' } });
    assert.equal(missing.status, 404);
    assert.match(missing.json.error.message, /upload it first/);
    const up = await h.client.json<UploadedFile>('POST', '/api/files', { stream: Readable.from([Buffer.from('package')]), headers: { 'content-type': 'application/octet-stream' } });
    const ok = await post('/api/tasks', { kind: 'push-file', target: { machines: ['web-1'] }, file: { sha256: up.sha256, destination: 'C:\\apps\\pkg.zip' } });
    assert.equal(ok.status, 201);
    assert.equal(ok.json.kind, 'push-file');
  });

  it('lists, gets and cancels tasks', async () => {
    const a = await newTask();
    const b = await newTask();
    const listed = await h.client.json<{ items: TaskView[] }>('GET', '/api/tasks?limit=2');
    assert.deepEqual(listed.items.map((t) => t.id), [b.id, a.id]);
    assert.deepEqual(listed.items[0]!.machines, []);
    const older = await h.client.json<{ items: TaskView[] }>('GET', `/api/tasks?before=${b.id}&limit=1`);
    assert.deepEqual(older.items.map((t) => t.id), [a.id]);
    await finish(a.id, 'Failed');
    const failed = await h.client.json<{ items: TaskView[] }>('GET', '/api/tasks?state=Failed');
    assert.deepEqual(failed.items.map((t) => t.id), [a.id]);
    assert.equal((await h.raw('GET', '/api/tasks?state=Sleeping')).status, 400);
    assert.equal((await h.raw('GET', '/api/tasks?limit=abc')).status, 400);
    assert.equal((await h.raw('GET', '/api/tasks?before=nonsense')).status, 400);

    const got = await h.client.json<TaskView>('GET', `/api/tasks/${b.id}`);
    assert.equal(got.id, b.id);
    assert.equal(got.machines.length, 1);
    assert.equal((await h.raw('GET', '/api/tasks/T-999999')).status, 404);

    const cancel = await h.raw('POST', `/api/tasks/${b.id}/cancel`);
    assert.equal(cancel.status, 202);
    assert.ok(cancel.json.cancelRequestedAt);
    assert.equal((await h.raw('POST', '/api/tasks/T-999999/cancel')).status, 404);
  });

  it('pages through a task log', async () => {
    const task = await newTask();
    await log(task.id, 25);
    const first = await h.client.json<LogPage>('GET', `/api/tasks/${task.id}/log?limit=10`);
    assert.deepEqual(first.items.map((l) => l.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(first.lastSeq, 10);
    assert.equal(first.taskState, 'Running');
    assert.deepEqual(Object.keys(first.items[0]!).sort(), ['at', 'machineId', 'seq', 'stream', 'text']);
    const last = await h.client.json<LogPage>('GET', `/api/tasks/${task.id}/log?after=20`);
    assert.deepEqual(last.items.map((l) => l.seq), [21, 22, 23, 24, 25]);
    assert.equal(last.lastSeq, 25);
    const none = await h.client.json<LogPage>('GET', `/api/tasks/${task.id}/log?after=25`);
    assert.deepEqual(none.items, []);
    assert.equal(none.lastSeq, 25);
    assert.equal((await h.raw('GET', `/api/tasks/${task.id}/log?after=-1`)).status, 400);
    assert.equal((await h.raw('GET', '/api/tasks/T-999999/log')).status, 404);
  });

  it('streams replayed then live lines, without repeats or gaps, then state and end', async () => {
    const task = await newTask();
    const stored = await log(task.id, 5);
    const reader = await stream(task.id, '?after=2');
    assert.deepEqual(await reader.logSeqs(3), [3, 4, 5]);
    await reader.expectState('Running');

    const six = await log(task.id, 1, 'six');
    h.engine.events.emit('log', task.id, [stored[4]!, ...six]);
    h.engine.events.emit('log', 'T-000000', six);
    assert.deepEqual(await reader.logSeqs(1), [6]);

    // An event that skips a stored line: the stream fills the gap from the store.
    const [seven, eight] = await log(task.id, 2, 'late');
    h.engine.events.emit('log', task.id, [eight!]);
    assert.deepEqual(await reader.logSeqs(2), [7, 8]);
    assert.equal(seven!.seq, 7);

    // A state change (here the machine's error text) is streamed when the engine announces it.
    await h.store.finishTaskMachine(task.id, task.machines[0]!.machineId, { state: 'Failed', exitCode: null, error: 'lost' });
    h.engine.events.emit('changed', task.id);
    const changed = await reader.expectState('Running');
    assert.equal(changed.machines[0]!.state, 'Failed');

    // Lines stored before the task finished but never announced still arrive before the end.
    await log(task.id, 2, 'unannounced');
    await finish(task.id);
    assert.deepEqual(await reader.logSeqs(2), [9, 10]);
    await reader.expectState('Success');
    await reader.expectEnd();
  });

  it('resumes from Last-Event-ID and ends at once for a finished task', async () => {
    const task = await newTask();
    await log(task.id, 8);
    await finish(task.id);
    const reader = await stream(task.id, '?after=1', { 'last-event-id': '6' });
    assert.deepEqual(await reader.logSeqs(2), [7, 8]);
    await reader.expectState('Success');
    await reader.expectEnd();
  });

  it('replays a long log across store pages in order', async () => {
    const task = await newTask();
    const lines = Array.from({ length: 2500 }, (_, i) => ({ tentacleSeq: i + 1, at: new Date(), stream: 'stdout' as const, text: `out ${i}` }));
    await h.store.appendMachineLog(task.id, (await h.store.getTask(task.id))!.machines[0]!.machineId, lines);
    await finish(task.id);
    const reader = await stream(task.id);
    const seqs = await reader.logSeqs(2500);
    assert.deepEqual(seqs, Array.from({ length: 2500 }, (_, i) => i + 1));
    await reader.expectState('Success');
    await reader.expectEnd();
  });

  it('serves a 48 MiB log in reads of at most 1 MiB, and reads on only as fast as a stream reader takes it', async () => {
    const task = await newTask();
    const machineId = task.machines[0]!.machineId;
    const LINE = 64 * 1024;
    const COUNT = 768;
    const MiB = 1024 * 1024;
    for (let first = 1; first <= COUNT; first += 64) {
      const batch = Array.from({ length: 64 }, (_, i) => ({ tentacleSeq: first + i, at: new Date(), stream: 'stdout' as const, text: 'x'.repeat(LINE) }));
      await h.store.appendMachineLog(task.id, machineId, batch);
    }
    await finish(task.id);
    const textOf = (lines: { text: string }[]) => lines.reduce((n, l) => n + l.text.length, 0);
    const reads: number[] = [];
    const readLog = h.store.readLog;
    h.store.readLog = async (...args) => {
      const lines = await readLog.apply(h.store, args);
      reads.push(textOf(lines));
      return lines;
    };
    try {
      let after = 0;
      let pages = 0;
      for (;;) {
        const page = await h.client.json<LogPage>('GET', `/api/tasks/${task.id}/log?after=${after}`);
        if (page.items.length === 0) break;
        pages++;
        assert.ok(textOf(page.items) <= MiB, `a page of ${textOf(page.items)} bytes`);
        after = page.lastSeq;
      }
      assert.equal(after, COUNT);
      assert.equal(pages, (COUNT * LINE) / MiB);

      reads.length = 0;
      const reader = await stream(task.id);
      await new Promise((r) => setTimeout(r, 1000));
      // Nothing is read from the response yet: socket buffers fill and the stream waits for 'drain'.
      assert.ok(reads.length < 24, `${reads.length} store reads for a client that reads nothing`);
      assert.deepEqual(await reader.logSeqs(COUNT), Array.from({ length: COUNT }, (_, i) => i + 1));
      await reader.expectState('Success');
      await reader.expectEnd();
      assert.ok(Math.max(...reads) <= MiB, `a store read of ${Math.max(...reads)} bytes`);
    } finally {
      h.store.readLog = readLog;
    }
  });

  it('sends each line once while lines keep arriving during the replay', async () => {
    const task = await newTask();
    const machineId = (await h.store.getTask(task.id))!.machines[0]!.machineId;
    const burst = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ tentacleSeq: from + i, at: new Date(), stream: 'stdout' as const, text: `x ${from + i}` }));
    await h.store.appendMachineLog(task.id, machineId, burst(1, 2500));
    const reading = stream(task.id).then((reader) => reader.logSeqs(2600, { skipStates: true }).then((seqs) => ({ reader, seqs })));
    // Announce new lines (and repeats of old ones) while the replay runs.
    for (let i = 0; i < 100; i++) {
      const [line] = await h.store.appendMachineLog(task.id, machineId, burst(2501 + i, 1));
      h.engine.events.emit('log', task.id, [line!]);
      if (i % 10 === 0) h.engine.events.emit('log', task.id, await h.store.readLog(task.id, 0, 5));
      await new Promise((r) => setImmediate(r));
    }
    const { reader, seqs } = await reading;
    assert.deepEqual(seqs, Array.from({ length: 2600 }, (_, i) => i + 1));
    reader.res.destroy();
  });

  it('sends heartbeats', async () => {
    const task = await newTask();
    const text = await new Promise<string>((resolve, reject) => {
      const req = https.get(
        { host: '127.0.0.1', port: h.port, path: `/api/tasks/${task.id}/log/stream`, headers: { 'x-reef-apikey': h.adminKey }, rejectUnauthorized: false },
        (res) => {
          let seen = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            seen += chunk;
            if (seen.includes(': ping\n\n')) {
              req.destroy();
              resolve(seen);
            }
          });
        },
      );
      req.on('error', reject);
    });
    assert.match(text, /event: state/);
    await eventually(() => h.engine.events.listenerCount('log') === 0, 'listeners to go');
  });

  it('answers 404 for the stream of an unknown task', async () => {
    const r = await h.raw('GET', '/api/tasks/T-999999/log/stream');
    assert.equal(r.status, 404);
    assert.equal(r.json.error.code, 'REEF_NOT_FOUND');
  });

  it('removes its listeners when clients disconnect or the stream ends', async () => {
    const task = await newTask();
    await log(task.id, 3);
    for (let round = 0; round < 40; round++) {
      const reader = await stream(task.id);
      if (round % 2 === 0) await reader.logSeqs(3);
      reader.res.destroy();
    }
    const open = await Promise.all(Array.from({ length: 10 }, () => stream(task.id)));
    for (const reader of open) {
      await reader.logSeqs(3);
      await reader.expectState('Running');
    }
    // The forty that went away are cleaned up; the ten open ones hold one listener each.
    await eventually(() => h.engine.events.listenerCount('log') === 10 && h.engine.events.listenerCount('changed') === 10, 'ten live streams');
    await finish(task.id);
    for (const reader of open) {
      await reader.expectState('Success');
      await reader.expectEnd();
    }
    await eventually(() => h.engine.events.listenerCount('log') === 0 && h.engine.events.listenerCount('changed') === 0, 'listeners to go');
  });
});

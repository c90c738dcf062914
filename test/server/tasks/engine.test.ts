/**
 * The task engine end to end on real parts: a SQLite store, the real comms layer, and a
 * scripted Tentacle whose answers each test chooses (a hostile one among them).
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { CommsServer, Handler, TentacleComms } from '../../../src/comms/index.js';
import { isReefError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/logging.js';
import { LocalBus } from '../../../src/server/cluster/bus.js';
import { createStore } from '../../../src/server/store/index.js';
import type { Store, TaskWithMachines } from '../../../src/server/store/types.js';
import { TaskEngine } from '../../../src/server/tasks/engine.js';
import { protocolErrors } from '../../../src/server/tentacle-client.js';
import { connected, startPollingTentacle, startServer, testIdentities } from '../../comms/harness.js';

const AT = '2026-12-02T10:00:00.000Z';
const NODE = 'node-a';

let dir: string;
let store: Store;
let server: CommsServer;
let tentacle: TentacleComms;
let engine: TaskEngine;
const calls: { method: string; args: Record<string, unknown> }[] = [];
/** What scripts.status answers for a call. */
let status: (args: Record<string, unknown>) => unknown;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reef-engine-'));
  store = await createStore(join(dir, 'reef.db'));
  const { tentacle: identity } = await testIdentities();
  await store.createMachine({ name: 'web-01', kind: 'target', thumbprint: identity.thumbprint, commsStyle: 'polling', environments: ['prod'], roles: ['web'] });
  const started = await startServer(new Set([identity.thumbprint]));
  server = started.server;
  const record = (method: string, answer: (args: Record<string, unknown>) => unknown): Handler => async (args) => {
    calls.push({ method, args: args as Record<string, unknown> });
    return answer(args as Record<string, unknown>);
  };
  tentacle = (
    await startPollingTentacle(started.port, {
      'scripts.start': record('scripts.start', (args) => ({ ticket: args.ticket, state: 'Running' })),
      'scripts.status': record('scripts.status', (args) => status(args)),
      'scripts.complete': record('scripts.complete', (args) => ({ ticket: args.ticket })),
    })
  ).comms;
  await connected(server, identity.thumbprint);
  engine = new TaskEngine({
    store,
    comms: server,
    blobs: { stat: async () => null, open: () => Readable.from([]) },
    logger: silentLogger,
    node: { name: NODE, info: {} },
    bus: new LocalBus(),
    timing: { sweepMs: 200 },
  });
  await engine.start();
  await store.coordination.addLink(NODE, identity.thumbprint, 'tcp');
});

after(async () => {
  await engine.close();
  await tentacle.close();
  await server.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  calls.length = 0;
});

/** Resolves with the task once it reached a final state. */
async function finished(taskId: string): Promise<TaskWithMachines> {
  for (;;) {
    const task = await store.getTask(taskId);
    if (task && ['Success', 'Failed', 'Cancelled', 'TimedOut'].includes(task.state)) return task;
    await Promise.race([once(engine.events, 'changed'), new Promise((r) => setTimeout(r, 200))]);
  }
}

const script = { syntax: 'sh' as const, body: 'echo hi' };
const target = { machines: ['web-01'] };

test('a script that exits 0 makes the task a Success, its lines stored, and then its ticket released', async () => {
  status = (args) => ({ ticket: args.ticket, state: 'Complete', exitCode: 0, cancelled: false, lines: [{ seq: 1, at: AT, stream: 'stdout', text: 'hi' }], nextSeq: 2, more: false });
  const task = await finished((await engine.createTask({ kind: 'run-script', target, script })).id);
  assert.equal(task.state, 'Success');
  assert.equal(task.machines[0]!.exitCode, 0);
  assert.ok((await store.readLog(task.id)).some((line) => line.stream === 'stdout' && line.text === 'hi'));
  const ticket = task.machines[0]!.ticket;
  while (!calls.some((c) => c.method === 'scripts.complete')) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(calls.at(-1), { method: 'scripts.complete', args: { ticket } });
});

test('a hostile status answer fails that machine with REEF_PROTOCOL_ERROR, stores none of it, and the engine goes on', async () => {
  const before = protocolErrors.count;
  status = (args) => ({
    ticket: args.ticket,
    state: 'Running',
    lines: Array.from({ length: 200_000 }, (_, i) => ({ seq: i + 1, at: AT, stream: 'stdout', text: 'flood' })),
    nextSeq: 200_001,
    more: false,
  });
  const hostile = await finished((await engine.createTask({ kind: 'run-script', target, script })).id);
  assert.equal(hostile.state, 'Failed');
  assert.match(hostile.machines[0]!.error ?? '', /Tentacle "web-01" .* answered scripts\.status with an invalid result: lines must hold at most 10000 lines/);
  assert.equal(protocolErrors.count, before + 1);
  const log = await store.readLog(hostile.id);
  assert.equal(log.filter((line) => line.text === 'flood').length, 0);

  status = (args) => ({ ticket: args.ticket, state: 'Complete', exitCode: 0, lines: [], nextSeq: (args.afterSeq as number) + 1, more: false });
  assert.equal((await finished((await engine.createTask({ kind: 'run-script', target, script })).id)).state, 'Success');
});

test('a push-file task of a file never uploaded is refused before it is stored', async () => {
  await assert.rejects(
    engine.createTask({ kind: 'push-file', target, file: { sha256: 'a'.repeat(64), destination: '/srv/app.tgz' } }),
    (err) => isReefError(err, 'REEF_NOT_FOUND'),
  );
});

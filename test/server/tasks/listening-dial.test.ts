/**
 * A machine run against a listening Tentacle the server cannot reach ends within the
 * pickup timeout, says why in the task log while it waits, and no link failure, however
 * often it repeats, keeps a task Running for ever. Real SQLite store, real comms, loopback.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { TentacleComms, type CommsServer } from '../../../src/comms/index.js';
import { silentLogger } from '../../../src/logging.js';
import { generateCertificate } from '../../../src/pki/certificate.js';
import { LocalBus } from '../../../src/server/cluster/bus.js';
import { createStore } from '../../../src/server/store/index.js';
import type { Store, TaskWithMachines } from '../../../src/server/store/types.js';
import { TaskEngine } from '../../../src/server/tasks/engine.js';
import { freePort } from '../../support/tinyproxy.js';
import { services, startServer, testIdentities } from '../../comms/harness.js';

const PICKUP_MS = 2000;
/** The heartbeat window (interval + timeout): how long a running script's Tentacle may stay away. */
const HEARTBEAT = { heartbeatIntervalMs: 500, heartbeatTimeoutMs: 1000 };
const AT = '2026-12-05T10:00:00.000Z';

let dir: string;
let store: Store;
let server: CommsServer;
let engine: TaskEngine;
let flapping: TentacleComms;
let vanishing: TentacleComms;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reef-listening-dial-'));
  store = await createStore(join(dir, 'reef.db'));
  const ids = await testIdentities();
  server = (await startServer(new Set(), { pickupTimeoutMs: PICKUP_MS, ...HEARTBEAT })).server;

  // Nothing listens on this one's port.
  await store.createMachine({
    name: 'closed-01', kind: 'target', thumbprint: ids.tentacle.thumbprint, commsStyle: 'listening',
    endpoint: { host: '127.0.0.1', port: await freePort() }, environments: ['prod'], roles: ['web'],
  });
  // This one answers TLS and then drops the link under every call.
  flapping = new TentacleComms({
    identity: ids.stranger,
    services: services({
      'health.ping': async () => {
        flapping.disconnect(ids.server.thumbprint);
        throw new Error('the link was dropped under this call');
      },
    }),
  });
  const port = await flapping.listen(0, '127.0.0.1', (tp) => tp === ids.server.thumbprint, () => [ids.server.thumbprint]);
  await store.createMachine({
    name: 'flapping-01', kind: 'target', thumbprint: ids.stranger.thumbprint, commsStyle: 'listening',
    endpoint: { host: '127.0.0.1', port }, environments: ['prod'], roles: ['db'],
  });

  // This one runs the script, answers one status call, and is gone (its port closed) before the next.
  const vanishingIdentity = await generateCertificate('Vanishing');
  vanishing = new TentacleComms({
    identity: vanishingIdentity,
    limits: HEARTBEAT,
    services: services({
      'scripts.start': async (args) => ({ ticket: (args as { ticket: string }).ticket, state: 'Running' }),
      'scripts.status': async (args) => {
        setTimeout(() => void vanishing.close(), 50);
        const { ticket, afterSeq } = args as { ticket: string; afterSeq: number };
        return { ticket, state: 'Running', lines: [{ seq: afterSeq + 1, at: AT, stream: 'stdout', text: 'started' }], nextSeq: afterSeq + 2, more: false };
      },
    }),
  });
  const vanishingPort = await vanishing.listen(0, '127.0.0.1', (tp) => tp === ids.server.thumbprint, () => [ids.server.thumbprint]);
  await store.createMachine({
    name: 'vanishing-01', kind: 'target', thumbprint: vanishingIdentity.thumbprint, commsStyle: 'listening',
    endpoint: { host: '127.0.0.1', port: vanishingPort }, environments: ['prod'], roles: ['app'],
  });

  engine = new TaskEngine({
    store,
    comms: server,
    blobs: { stat: async () => null, open: () => Readable.from([]) },
    logger: silentLogger,
    node: { name: 'node-a', info: {} },
    bus: new LocalBus(),
    timing: { sweepMs: 200 },
  });
  await engine.start();
});

after(async () => {
  await engine.close();
  await flapping.close();
  await vanishing.close();
  await server.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function finished(taskId: string, withinMs: number): Promise<TaskWithMachines> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const task = await store.getTask(taskId);
    if (task && ['Success', 'Failed', 'Cancelled', 'TimedOut'].includes(task.state)) return task;
    assert.ok(Date.now() < deadline, `task ${taskId} still ${task?.state} after ${withinMs} ms`);
    await Promise.race([once(engine.events, 'changed'), new Promise((r) => setTimeout(r, 200))]);
  }
}

for (const kind of ['health-check', 'run-script'] as const) {
  test(`a ${kind} on a listening machine nothing answers for fails within the pickup timeout, and its log says why meanwhile`, async () => {
    const started = Date.now();
    const request =
      kind === 'health-check'
        ? { kind, target: { machines: ['closed-01'] } }
        : { kind, target: { machines: ['closed-01'] }, script: { syntax: 'sh' as const, body: 'echo hi' } };
    const task = await finished((await engine.createTask(request)).id, PICKUP_MS + 8000);
    const ms = Date.now() - started;
    assert.equal(task.state, 'Failed');
    assert.ok(ms >= PICKUP_MS, `ended after ${ms} ms, before the pickup timeout`);
    const machine = task.machines[0]!;
    assert.match(machine.error ?? '', /Could not reach Tentacle "closed-01" .* at 127\.0\.0\.1:\d+ within the pickup timeout \(2 s; .*every connection was refused/);
    assert.match(machine.error ?? '', /--comms-style TentacleActive/);
    const log = await store.readLog(task.id);
    const waiting = log.findIndex((line) => line.stream === 'info' && /^Could not connect to Tentacle "closed-01" .*Trying again until/.test(line.text));
    const failed = log.findIndex((line) => line.stream === 'error' && line.text === machine.error);
    assert.ok(waiting >= 0 && failed > waiting, JSON.stringify(log.map((line) => line.text)));
  });
}

test('a link that drops under every call ends the machine run after the pickup timeout, with the last error', async () => {
  const started = Date.now();
  const task = await finished((await engine.createTask({ kind: 'health-check', target: { machines: ['flapping-01'] } })).id, PICKUP_MS + 10_000);
  const ms = Date.now() - started;
  assert.equal(task.state, 'Failed');
  assert.ok(ms >= PICKUP_MS, `ended after ${ms} ms`);
  assert.match(task.machines[0]!.error ?? '', /Tentacle "flapping-01" .* kept failing health\.ping for 2 s \(the pickup timeout\), so this machine's part gave up: /);
});

test('a listening Tentacle gone while its script runs: lost contact after the task\'s lost-contact limit, with what the last dial met', async () => {
  const started = Date.now();
  const request = { kind: 'run-script' as const, target: { machines: ['vanishing-01'] }, script: { syntax: 'sh' as const, body: 'sleep 60' }, lostContactLimitSeconds: 2 };
  const task = await finished((await engine.createTask(request)).id, 10_000);
  assert.equal(task.state, 'Failed');
  assert.ok(Date.now() - started < PICKUP_MS + 5000);
  const error = task.machines[0]!.error ?? '';
  assert.match(error, /^Lost contact with Tentacle "vanishing-01" at .* while its script was running, and it did not come back within 2 s/);
  // The dialling had what was left of the lost-contact limit, not the pickup timeout, and says so.
  assert.match(error, /The last attempt to reach it: Could not reach Tentacle "vanishing-01" .* at 127\.0\.0\.1:\d+ within \d s \(\d+ attempts? over \d s\): every connection was refused/);
  assert.ok((await store.readLog(task.id)).some((line) => line.text === 'started'), 'the line collected before it went is kept');
});

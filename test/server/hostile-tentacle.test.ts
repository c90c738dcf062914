/**
 * A real Reef server (in-process, SQLite) and a hostile Tentacle holding a registered
 * certificate, on the real comms layer: its answers break the contract in every way a
 * test sets. The server must keep serving, fail only the calls concerned with
 * REEF_PROTOCOL_ERROR, and let nothing escape as an unhandled rejection.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TaskView } from '../../src/api/contract.js';
import type { Handler, TentacleComms } from '../../src/comms/index.js';
import { protocolErrors } from '../../src/server/tentacle-client.js';
import { startPollingTentacle } from '../comms/harness.js';
import { startSecurityServer, type SecurityServer } from '../security/server.js';

let s: SecurityServer;
let hostile: TentacleComms;
const pings: unknown[] = [];
const rejections: unknown[] = [];
const onRejection = (reason: unknown) => rejections.push(reason);
let errorsAtStart: number;

/** Asked by the server on every connection: at first a number where the carrier belongs. */
let pong: unknown = { time: 'now', carrier: 42 };

const table: Record<string, Handler> = {
  'health.ping': async (args) => {
    pings.push(args);
    return pong;
  },
  'capabilities.get': async () => ({ tentacleVersion: 'x'.repeat(1_000_000), os: 'linux', shells: [] }),
};

before(async () => {
  process.on('unhandledRejection', onRejection);
  errorsAtStart = protocolErrors.count;
  s = await startSecurityServer();
  hostile = (await startPollingTentacle(s.running.commsPort, table, { identity: s.tentacle, trusted: [s.running.info.commsThumbprint] })).comms;
  while (pings.length === 0) await new Promise((r) => setTimeout(r, 20));
});

after(async () => {
  process.off('unhandledRejection', onRejection);
  await hostile.close();
  await s.close();
});

test('a malformed ping on connecting is refused and the server keeps serving', async () => {
  // The answer was refused (counted once the server has read it).
  const deadline = Date.now() + 10_000;
  while (protocolErrors.count === errorsAtStart && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(protocolErrors.count, errorsAtStart + 1);
  assert.deepEqual(rejections, []);
  assert.deepEqual(await s.api.json('GET', '/api/ping'), { ok: true });
  const machine = await s.api.json<{ carrier: string | null; online: boolean }>('GET', '/api/machines/web-01');
  assert.equal(machine.online, true);
  assert.equal(machine.carrier, 'tcp', 'the carrier the server saw, not what the Tentacle claimed');
});

test('a health check answered with a malformed, oversized capabilities fails with REEF_PROTOCOL_ERROR', async () => {
  pong = { time: new Date().toISOString(), carrier: 'tcp' };
  const created = await s.api.json<TaskView>('POST', '/api/tasks', { body: { kind: 'health-check', target: { machines: ['web-01'] } } });
  let task = created;
  while (!['Success', 'Failed', 'Cancelled', 'TimedOut'].includes(task.state)) {
    await new Promise((r) => setTimeout(r, 50));
    task = await s.api.json<TaskView>('GET', `/api/tasks/${created.id}`);
  }
  assert.equal(task.state, 'Failed');
  assert.match(task.machines[0]!.error ?? '', /^Tentacle "web-01" \([0-9A-F]+\) answered capabilities\.get with an invalid result: tentacleVersion must be at most 100 characters; os Expected object, received string/);
  assert.deepEqual(await s.api.json('GET', '/api/ping'), { ok: true });
  assert.deepEqual(rejections, []);
});

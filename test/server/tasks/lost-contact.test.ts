/**
 * Lost contact during a script, on real parts: an in-process Reef server (SQLite), a real
 * Tentacle script service polling through a fault forwarder, and cuts made by refusing
 * and resetting every connection for a while. Short limits via options keep it quick:
 *
 * - a cut shorter than the task's lost-contact limit: the run shows "lost contact since"
 *   while it waits, then resumes collecting and ends Success with every line once, in order;
 * - a cut longer than the limit: the run fails for lost contact, and when the Tentacle
 *   comes back the late lines and the real exit code are stored as a late report, the run
 *   staying Failed, and the Tentacle is told it may forget the ticket.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LogPage, TaskView } from '../../../src/api/contract.js';
import type { TentacleComms } from '../../../src/comms/index.js';
import type { ScriptService } from '../../../src/tentacle/services/scripts/index.js';
import { startPollingTentacle } from '../../comms/harness.js';
import { startForwarder, type Forwarder } from '../../support/forwarder.js';
import { realTentacleServices } from '../../support/tentacle-services.js';
import { startSecurityServer, type SecurityServer } from '../../security/server.js';

/** Heartbeats notice a dead link within 1 s on both ends. */
const LIMITS = { heartbeatIntervalMs: 300, heartbeatTimeoutMs: 700 };

let s: SecurityServer;
let dir: string;
let forwarder: Forwarder;
let scripts: ScriptService;
let tentacle: TentacleComms;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reef-lost-contact-'));
  s = await startSecurityServer({ limits: { handshakeTimeoutMs: 5000, ...LIMITS } });
  forwarder = await startForwarder({ targetPort: s.running.commsPort });
  const real = realTentacleServices(dir);
  scripts = real.scripts;
  tentacle = (
    await startPollingTentacle(forwarder.port, real.table, {
      identity: s.tentacle,
      trusted: [s.running.info.commsThumbprint],
      limits: LIMITS,
    })
  ).comms;
});

after(async () => {
  await tentacle?.close();
  await scripts?.close();
  await forwarder?.close();
  await s?.close();
  await rm(dir, { recursive: true, force: true });
});

async function task(id: string): Promise<TaskView> {
  return s.api.json<TaskView>('GET', `/api/tasks/${id}`);
}

/** Polls until `probe` gives a value (the e2e harness has one too, but needs a build). */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(50)) {
    const value = await probe();
    if (value !== undefined) return value;
  }
  throw new Error(`timed out waiting for ${what}`);
}

const FINAL = ['Success', 'Failed', 'Cancelled', 'TimedOut'];

async function log(id: string): Promise<LogPage['items']> {
  return (await s.api.json<LogPage>('GET', `/api/tasks/${id}/log?after=0&limit=10000`)).items;
}

async function start(body: string, lostContactLimitSeconds: number): Promise<string> {
  const created = await s.api.json<TaskView>('POST', '/api/tasks', {
    body: { kind: 'run-script', target: { machines: ['web-01'] }, script: { syntax: 'sh', body }, lostContactLimitSeconds },
  });
  return created.id;
}

/** The link is down: every connection is reset, new ones are refused. */
function cut(): void {
  forwarder.refuse(true);
  forwarder.killAll();
}

const numbered = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}`);
const COUNT = 20;
const SCRIPT = (exit: number) => `for i in $(seq 1 ${COUNT}); do echo "line $i"; sleep 0.08; done; exit ${exit}`;

test('a cut shorter than the lost-contact limit: "lost contact since" while it waits, then Success with every line once, in order', async () => {
  const id = await start(SCRIPT(0), 60);
  await waitFor('the first lines', async () => ((await log(id)).some((l) => l.text === 'line 3') ? true : undefined));
  cut();
  const waiting = await waitFor('the run to show lost contact', async () => {
    const m = (await task(id)).machines[0]!;
    return m.lostContactSince ? m : undefined;
  });
  assert.equal(waiting.state, 'Running');
  assert.ok(Date.parse(waiting.lostContactSince!) <= Date.now());
  await sleep(2000); // the script ends meanwhile, its lines kept by the Tentacle
  forwarder.refuse(false);
  const done = await waitFor('the task to end', async () => {
    const t = await task(id);
    return FINAL.includes(t.state) ? t : undefined;
  });
  assert.equal(done.state, 'Success', JSON.stringify(done.machines[0]));
  assert.equal(done.machines[0]!.exitCode, 0);
  assert.equal(done.machines[0]!.lostContactSince, null, 'back in contact');
  assert.equal(done.machines[0]!.lateReport, null);
  const lines = await log(id);
  assert.deepEqual(lines.filter((l) => l.stream === 'stdout').map((l) => l.text), numbered(COUNT));
  const notes = lines.filter((l) => l.stream === 'info').map((l) => l.text);
  assert.ok(notes.some((t) => /^Lost contact with the Tentacle at .*waiting up to 60 s \(the lost-contact limit\)/.test(t)), notes.join('\n'));
  assert.ok(notes.some((t) => /^Contact with the Tentacle is back after .*; collecting from line \d+\./.test(t)), notes.join('\n'));
});

test('a Tentacle back after the limit: the run fails for lost contact, then shows the late lines and the real exit code', async () => {
  const id = await start(SCRIPT(3), 1);
  await waitFor('the first lines', async () => ((await log(id)).some((l) => l.text === 'line 3') ? true : undefined));
  cut();
  const failed = await waitFor('the run to fail for lost contact', async () => {
    const t = await task(id);
    return FINAL.includes(t.state) ? t : undefined;
  });
  assert.equal(failed.state, 'Failed');
  const m = failed.machines[0]!;
  assert.match(m.error ?? '', /^Lost contact with Tentacle "web-01" at .* did not come back within 1 s \(the lost-contact limit\)/);
  assert.equal(m.exitCode, null);
  assert.ok(m.lostContactSince, 'when contact was lost stays on the failed run');
  assert.equal(m.lateReport, null);
  const before = (await log(id)).filter((l) => l.stream === 'stdout').length;
  assert.ok(before < COUNT, `${before} lines collected before the cut`);

  await sleep(2000); // the script ends on the Tentacle meanwhile
  forwarder.refuse(false);
  const reported = await waitFor('the late report', async () => {
    const t = await task(id);
    return t.machines[0]!.lateReport ? t : undefined;
  });
  assert.equal(reported.state, 'Failed', 'the task keeps its result');
  assert.equal(reported.machines[0]!.state, 'Failed');
  const late = reported.machines[0]!.lateReport!;
  assert.equal(late.state, 'Failed');
  assert.equal(late.exitCode, 3, 'the real exit code');
  assert.equal(late.error, 'The script exited with code 3.');
  assert.equal(late.lines, COUNT - before);
  const lines = await log(id);
  assert.deepEqual(lines.filter((l) => l.stream === 'stdout').map((l) => l.text), numbered(COUNT), 'every line once, in order');
  const marker = lines.findIndex((l) => /^Late report: the Tentacle came back after this machine run had failed for lost contact/.test(l.text));
  assert.ok(marker > 0 && lines.slice(marker + 1).some((l) => l.text === `line ${COUNT}`), 'the late lines come after the marker');
  assert.ok(lines.some((l) => /^Late report: the script really ended Failed \(exit code 3\)/.test(l.text)));
  // The server holds everything now: the Tentacle was told it may forget the ticket.
  const ticket = (await s.running.store.getTask(id))!.machines[0]!.ticket;
  await waitFor('the ticket to be completed', async () => ((await readdir(join(dir, 'workspace', ticket))).join() === 'completed' ? true : undefined));
});

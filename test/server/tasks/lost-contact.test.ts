/**
 * Lost contact during a script, on real parts: an in-process Reef server (SQLite), a real
 * Tentacle script service polling through a fault forwarder, and cuts made by refusing
 * and resetting every connection for a while. Short limits via options keep it quick:
 *
 * - a cut shorter than the task's lost-contact limit: the run shows "lost contact since"
 *   while it waits, then resumes collecting and ends Success with every line once, in order;
 * - a cut longer than the limit: the run fails for lost contact, and when the Tentacle
 *   comes back the late lines and the real exit code are stored as a late report, the run
 *   staying Failed, and the Tentacle is told it may forget the ticket; one whose Tentacle
 *   no longer holds the ticket gets a late report that says so.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LogPage, TaskView } from '../../../src/api/contract.js';
import { resolveServerSettings } from '../../../src/cli/reef-server.js';
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

/** Resolves with the task once `done` says so. */
const until = (what: string, id: string, done: (t: TaskView) => boolean) =>
  waitFor(what, async () => {
    const t = await task(id);
    return done(t) ? t : undefined;
  });

// One cut serves both cases (the main suite's time is short): a script whose task allows 60 s
// of lost contact, and one whose task allows 1 s.
test('one cut: shorter than one task\'s limit, longer than the other\'s; every line once, and the real outcome or a late report', async () => {
  const patient = await start(SCRIPT(0), 60);
  const hasty = await start(SCRIPT(3), 1);
  // Its Tentacle will have forgotten the ticket by the time it is back.
  const forgotten = await start('echo first; sleep 1; echo second', 1);
  for (const id of [patient, hasty]) {
    await waitFor('the first lines', async () => ((await log(id)).some((l) => l.text === 'line 3') ? true : undefined));
  }
  cut();

  // Within its limit: the run waits, and says since when.
  const waiting = (await until('lost contact shown', patient, (t) => t.machines[0]!.lostContactSince !== null)).machines[0]!;
  assert.equal(waiting.state, 'Running');
  assert.ok(Date.parse(waiting.lostContactSince!) <= Date.now());
  // Past its limit: the run fails for lost contact, and keeps when contact was lost.
  const failed = await until('the hasty run to fail', hasty, (t) => FINAL.includes(t.state));
  assert.equal(failed.state, 'Failed');
  const m = failed.machines[0]!;
  assert.match(m.error ?? '', /^Lost contact with Tentacle "web-01" at .* did not come back within 1 s \(the lost-contact limit\)/);
  assert.equal(m.exitCode, null);
  assert.ok(m.lostContactSince, 'when contact was lost stays on the failed run');
  assert.equal(m.lateReport, null);
  const before = (await log(hasty)).filter((l) => l.stream === 'stdout').length;
  assert.ok(before < COUNT, `${before} lines collected before the cut`);

  await sleep(2000); // the scripts end on the Tentacle meanwhile, their lines kept there
  // As if its retention period had passed (or someone emptied the workspace).
  const forgottenTicket = (await s.running.store.getTask(forgotten))!.machines[0]!.ticket;
  await scripts.complete({ ticket: forgottenTicket });
  forwarder.refuse(false);

  const done = await until('the patient task to end', patient, (t) => FINAL.includes(t.state));
  assert.equal(done.state, 'Success', JSON.stringify(done.machines[0]));
  assert.equal(done.machines[0]!.exitCode, 0);
  assert.equal(done.machines[0]!.lostContactSince, null, 'back in contact');
  assert.equal(done.machines[0]!.lateReport, null);
  const lines = await log(patient);
  assert.deepEqual(lines.filter((l) => l.stream === 'stdout').map((l) => l.text), numbered(COUNT), 'every line once, in order');
  const notes = lines.filter((l) => l.stream === 'info').map((l) => l.text);
  assert.ok(notes.some((t) => /^Lost contact with the Tentacle at .*waiting up to 60 s \(the lost-contact limit\)/.test(t)), notes.join('\n'));
  assert.ok(notes.some((t) => /^Contact with the Tentacle is back after .*; collecting from line \d+\./.test(t)), notes.join('\n'));

  const reported = await until('the late report', hasty, (t) => t.machines[0]!.lateReport !== null);
  assert.equal(reported.state, 'Failed', 'the task keeps its result');
  assert.equal(reported.machines[0]!.state, 'Failed');
  const late = reported.machines[0]!.lateReport!;
  assert.equal(late.state, 'Failed');
  assert.equal(late.exitCode, 3, 'the real exit code');
  assert.equal(late.error, 'The script exited with code 3.');
  assert.equal(late.lines, COUNT - before);
  const lateLog = await log(hasty);
  assert.deepEqual(lateLog.filter((l) => l.stream === 'stdout').map((l) => l.text), numbered(COUNT), 'every line once, in order');
  const marker = lateLog.findIndex((l) => /^Late report: the Tentacle came back after this machine run had failed for lost contact/.test(l.text));
  assert.ok(marker > 0 && lateLog.slice(marker + 1).some((l) => l.text === `line ${COUNT}`), 'the late lines come after the marker');
  assert.ok(lateLog.some((l) => /^Late report: the script really ended Failed \(exit code 3\)/.test(l.text)));
  const nothing = (await until('the forgotten run\'s late report', forgotten, (t) => t.machines[0]!.lateReport !== null)).machines[0]!;
  assert.equal(nothing.state, 'Failed');
  assert.deepEqual([nothing.lateReport!.state, nothing.lateReport!.exitCode], [null, null], 'no outcome to report');
  assert.match(nothing.lateReport!.error ?? '', /^The Tentacle came back but no longer holds the script: .*already completed/);

  // The server holds everything now: the Tentacle was told it may forget the ticket.
  const ticket = (await s.running.store.getTask(hasty))!.machines[0]!.ticket;
  await waitFor('the ticket to be completed', async () => ((await readdir(join(dir, 'workspace', ticket))).join() === 'completed' ? true : undefined));
});

test('the server setting: --lost-contact-limit (REEF_LOST_CONTACT_LIMIT) wins over lostContactLimitSeconds in the config file', async () => {
  const data = join(dir, 'settings');
  assert.equal((await resolveServerSettings({ data })).lostContactLimitMs, undefined, 'the engine default (30 minutes) applies');
  assert.equal((await resolveServerSettings({ data, lostContactLimit: '90' })).lostContactLimitMs, 90_000);
  const config = join(dir, 'reef.json');
  await writeFile(config, JSON.stringify({ dataDir: data, lostContactLimitSeconds: 3600 }));
  assert.equal((await resolveServerSettings({ config })).lostContactLimitMs, 3_600_000);
  assert.equal((await resolveServerSettings({ config, lostContactLimit: '60' })).lostContactLimitMs, 60_000);
  await assert.rejects(resolveServerSettings({ data, lostContactLimit: 'never' }), /--lost-contact-limit \(REEF_LOST_CONTACT_LIMIT\) must be a positive number of seconds/);
});

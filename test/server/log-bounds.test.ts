/**
 * Bounded logs end to end, on a real Reef server (in-process, SQLite) and the real comms
 * layer: a hostile Tentacle floods 1 MiB lines in every status answer and the server stores
 * no more than its log quota while the API keeps answering; a real Tentacle's script writing
 * 3 MB of NUL bytes ends Success with every byte stored.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskView } from '../../src/api/contract.js';
import { MAX_LOG_LINE_BYTES } from '../../src/api/tentacle/index.js';
import type { Handler, TentacleComms } from '../../src/comms/index.js';
import { generateCertificate } from '../../src/pki/certificate.js';
import type { LogLine } from '../../src/server/store/types.js';
import { protocolErrors } from '../../src/server/tentacle-client.js';
import type { ScriptService } from '../../src/tentacle/services/scripts/index.js';
import { startPollingTentacle } from '../comms/harness.js';
import { realTentacleServices } from '../support/tentacle-services.js';
import { startSecurityServer, type SecurityServer } from '../security/server.js';

const QUOTA = 4 * 1024 * 1024;
const FLOOD_ANSWERS = 30;
const LINES_PER_ANSWER = 15;
const MIB_LINE = 'y'.repeat(1024 * 1024);

let s: SecurityServer;
let dir: string;
let hostile: TentacleComms;
let real: TentacleComms;
let scripts: ScriptService;
let floodAnswers = 0;

const hostileTable: Record<string, Handler> = {
  'health.ping': async () => ({ time: new Date().toISOString(), carrier: 'tcp' }),
  'scripts.start': async (args) => ({ ticket: (args as { ticket: string }).ticket, state: 'Running' }),
  'scripts.complete': async (args) => ({ ticket: (args as { ticket: string }).ticket }),
  // Every answer: as many 1 MiB lines as fit in a comms message, then a clean exit.
  'scripts.status': async (args) => {
    const { ticket, afterSeq } = args as { ticket: string; afterSeq: number };
    if (++floodAnswers > FLOOD_ANSWERS) return { ticket, state: 'Complete', exitCode: 0, lines: [], nextSeq: afterSeq + 1, more: false };
    const at = new Date().toISOString();
    const lines = Array.from({ length: LINES_PER_ANSWER }, (_, i) => ({ seq: afterSeq + 1 + i, at, stream: 'stdout', text: MIB_LINE }));
    return { ticket, state: 'Running', lines, nextSeq: afterSeq + 1 + LINES_PER_ANSWER, more: false };
  },
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reef-log-bounds-'));
  s = await startSecurityServer({ logQuotaBytes: QUOTA });
  const trusted = [s.running.info.commsThumbprint];
  hostile = (await startPollingTentacle(s.running.commsPort, hostileTable, { identity: s.tentacle, trusted })).comms;

  const identity = await generateCertificate('Real Tentacle');
  await s.api.json('POST', '/api/machines', {
    body: { name: 'real-01', kind: 'target', thumbprint: identity.thumbprint, commsStyle: 'polling', environments: ['Production'], roles: ['app'] },
  });
  let table: Record<string, Handler>;
  ({ scripts, table } = realTentacleServices(dir));
  real = (await startPollingTentacle(s.running.commsPort, table, { identity, trusted })).comms;
});

after(async () => {
  await hostile.close();
  await real.close();
  await scripts.close();
  await s.close();
  await rm(dir, { recursive: true, force: true });
});

async function runTask(machine: string, body: string): Promise<TaskView> {
  const created = await s.api.json<TaskView>('POST', '/api/tasks', { body: { kind: 'run-script', target: { machines: [machine] }, script: { syntax: 'sh', body } } });
  return finished(created.id);
}

async function finished(taskId: string): Promise<TaskView> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const task = await s.api.json<TaskView>('GET', `/api/tasks/${taskId}`);
    if (['Success', 'Failed', 'Cancelled', 'TimedOut'].includes(task.state)) return task;
    assert.ok(Date.now() < deadline, `task ${taskId} still ${task.state}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The task's whole log, read from the store page by page. */
async function storedLog(taskId: string): Promise<LogLine[]> {
  const lines: LogLine[] = [];
  for (;;) {
    const page = await s.running.store.readLog(taskId, lines.at(-1)?.seq ?? 0);
    if (page.length === 0) return lines;
    lines.push(...page);
  }
}

test('a Tentacle flooding 1 MiB lines: the store stops at the quota, the task ends with the script outcome, the API keeps answering', async (t) => {
  const errorsBefore = protocolErrors.count;
  const created = await s.api.json<TaskView>('POST', '/api/tasks', {
    body: { kind: 'run-script', target: { machines: ['web-01'] }, script: { syntax: 'sh', body: 'flood' } },
  });
  let slowestPingMs = 0;
  let pings = 0;
  let task = created;
  // A healthy Tentacle's task during the flood.
  const neighbour = runTask('real-01', 'echo alive');
  while (!['Success', 'Failed', 'Cancelled', 'TimedOut'].includes(task.state)) {
    const started = Date.now();
    assert.deepEqual(await s.api.json('GET', '/api/ping'), { ok: true });
    slowestPingMs = Math.max(slowestPingMs, Date.now() - started);
    pings++;
    await new Promise((r) => setTimeout(r, 50));
    task = await s.api.json<TaskView>('GET', `/api/tasks/${created.id}`);
  }
  const floodMs = Date.now() - Date.parse(created.createdAt);
  t.diagnostic(`${FLOOD_ANSWERS * LINES_PER_ANSWER} lines of 1 MiB in ${floodMs} ms; ${pings} pings, slowest ${slowestPingMs} ms`);
  assert.equal(task.state, 'Success', task.machines[0]?.error ?? '');
  assert.equal(task.machines[0]!.exitCode, 0);
  assert.ok(floodAnswers > FLOOD_ANSWERS, 'the flood was followed to its end');
  assert.ok(pings >= 5, `${pings} pings during the flood`);
  // Relative to the flood, not a fixed time: a busy machine slows both alike (the latency
  // itself is a benchmark's business); a server the flood blocks answers no ping until it ends.
  assert.ok(slowestPingMs < floodMs / 10, `/api/ping took ${slowestPingMs} ms during a flood of ${floodMs} ms`);
  assert.equal(protocolErrors.count, errorsBefore, 'oversized lines are cut, not refused');
  const other = await neighbour;
  assert.equal(other.state, 'Success', other.machines[0]?.error ?? '');
  assert.ok(Date.parse(other.finishedAt!) < Date.parse(task.finishedAt!), 'the healthy Tentacle was served during the flood');

  const lines = await storedLog(task.id);
  const output = lines.filter((l) => l.stream === 'stdout');
  const storedBytes = output.reduce((n, l) => n + Buffer.byteLength(l.text), 0);
  assert.ok(storedBytes <= QUOTA, `${storedBytes} bytes stored over a quota of ${QUOTA}`);
  assert.ok(storedBytes > QUOTA - 2 * MAX_LOG_LINE_BYTES, `the quota was used: ${storedBytes} bytes`);
  for (const line of output) {
    assert.match(line.text.slice(MAX_LOG_LINE_BYTES), /^ \[… line cut by the Reef server: 983040 more characters/);
  }
  const notes = lines.filter((l) => l.stream === 'info').map((l) => l.text);
  assert.equal(notes.filter((t) => t.startsWith('Log quota reached')).length, 1);
  const sent = FLOOD_ANSWERS * LINES_PER_ANSWER;
  assert.match(notes.at(-1)!, new RegExp(`^Dropped by the log quota \\(not stored\\): ${sent - output.length} lines, `));
  const row = (await s.running.store.getTask(task.id))!.machines[0]!;
  assert.equal(row.logBytes, storedBytes);
  assert.equal(row.logCursor, sent);
  // 450 MiB were sent; the database files hold the quota and little else.
  let dbBytes = 0;
  for (const file of (await readdir(s.dataDir)).filter((f) => f.startsWith('reef.db'))) dbBytes += (await stat(join(s.dataDir, file))).size;
  t.diagnostic(`reef.db and its WAL: ${dbBytes} bytes`);
  assert.ok(dbBytes < 8 * QUOTA, `the database files take ${dbBytes} bytes`);
});

test('3 MB of NUL bytes from a real script on a real Tentacle: Success, "done" last, every NUL stored', async (t) => {
  const errorsBefore = protocolErrors.count;
  const task = await runTask('real-01', 'head -c 3000000 /dev/zero; echo done');
  t.diagnostic(`ran in ${Date.parse(task.finishedAt!) - Date.parse(task.createdAt)} ms`);
  assert.equal(task.state, 'Success', task.machines[0]?.error ?? '');
  assert.equal(protocolErrors.count, errorsBefore);
  const output = (await storedLog(task.id)).filter((l) => l.stream === 'stdout');
  let nuls = 0;
  for (const line of output) for (const ch of line.text) if (ch === '\0') nuls++;
  assert.equal(nuls, 3_000_000);
  assert.ok(output.at(-1)!.text.endsWith('done'));
  assert.ok(output.every((l) => l.text.length <= MAX_LOG_LINE_BYTES));
});

import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isReefError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/logging.js';
import { MAX_LOG_LINE_BYTES, STATUS_ANSWER_BUDGET_BYTES, type ScriptLogLine, type ScriptStatus } from '../../../src/api/tentacle/index.js';
import { ScriptService, type ScriptServiceOptions } from '../../../src/tentacle/services/scripts/index.js';

let dir: string;
let workspaceDir: string;
const services: ScriptService[] = [];
const groups: number[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reef-scripts-'));
  workspaceDir = join(dir, 'work');
});

afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.close()));
  for (const pgid of groups.splice(0)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await rm(dir, { recursive: true, force: true });
});

function service(options: Partial<ScriptServiceOptions> = {}): ScriptService {
  const s = new ScriptService({ workspaceDir, logger: silentLogger, pollIntervalMs: 20, cancelGraceMs: 1000, ...options });
  services.push(s);
  return s;
}

async function metaPid(ticket: string): Promise<number> {
  const pid = (JSON.parse(await readFile(join(workspaceDir, ticket, 'meta.json'), 'utf8')) as { pid: number }).pid;
  groups.push(pid);
  return pid;
}

/** Polls until the script is no longer Running, then returns its status with every line. */
async function finished(s: ScriptService, ticket: string, timeoutMs = 8000): Promise<ScriptStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { state } = await s.status({ ticket, afterSeq: 0, maxLines: 1 });
    if (state !== 'Running') return everything(s, ticket);
    if (Date.now() > deadline) throw new Error(`script ${ticket} still running after ${timeoutMs} ms`);
    await sleep(25);
  }
}

async function everything(s: ScriptService, ticket: string, pageSize = 1000): Promise<ScriptStatus> {
  const lines: ScriptLogLine[] = [];
  let afterSeq = 0;
  for (;;) {
    const page = await s.status({ ticket, afterSeq, maxLines: pageSize });
    lines.push(...page.lines);
    afterSeq = page.nextSeq - 1;
    if (!page.more) return { ...page, lines };
  }
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A zombie is dead for our purposes: pid 1 of a container may never reap it. */
async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

const texts = (lines: ScriptLogLine[], stream: string) => lines.filter((l) => l.stream === stream).map((l) => l.text);

function assertDense(lines: ScriptLogLine[]): void {
  lines.forEach((line, i) => assert.equal(line.seq, i + 1, `line ${i} has seq ${line.seq}`));
}

test('stdout and stderr become numbered lines, and the exit code is reported', async () => {
  const s = service();
  const started = await s.start({
    ticket: 'T1',
    syntax: 'bash',
    body: 'echo one; sleep 0.1; echo two >&2; sleep 0.1; echo "three $1 $REEF_TEST_VAR"; exit 3',
    args: ['arg'],
    env: { REEF_TEST_VAR: 'var' },
  });
  assert.deepEqual(started, { ticket: 'T1', state: 'Running' });
  const result = await finished(s, 'T1');
  assert.equal(result.state, 'Complete');
  assert.equal(result.exitCode, 3);
  assert.equal(result.cancelled, false);
  assertDense(result.lines);
  assert.deepEqual(
    result.lines.map((l) => [l.stream, l.text]),
    [
      ['stdout', 'one'],
      ['stderr', 'two'],
      ['stdout', 'three arg var'],
    ],
  );
  assert.ok(result.lines.every((l) => !Number.isNaN(Date.parse(l.at))));
  // The default working directory is the ticket's own, and sh scripts run too.
  await s.start({ ticket: 'T2', syntax: 'sh', body: 'pwd' });
  const sh = await finished(s, 'T2');
  assert.equal(sh.exitCode, 0);
  assert.deepEqual(texts(sh.lines, 'stdout'), [join(workspaceDir, 'T2', 'work')]);
});

test('status after a sequence number returns exactly the later lines', async () => {
  const s = service();
  await s.start({ ticket: 'seq', syntax: 'bash', body: 'seq 1 50' });
  await finished(s, 'seq');
  const later = await s.status({ ticket: 'seq', afterSeq: 20 });
  assert.deepEqual(
    later.lines.map((l) => [l.seq, l.text]),
    Array.from({ length: 30 }, (_, i) => [21 + i, String(21 + i)]),
  );
  assert.equal(later.nextSeq, 51);
  assert.equal(later.more, false);
  const page = await s.status({ ticket: 'seq', afterSeq: 20, maxLines: 10 });
  assert.deepEqual(
    page.lines.map((l) => l.seq),
    [21, 22, 23, 24, 25, 26, 27, 28, 29, 30],
  );
  assert.equal(page.nextSeq, 31);
  assert.equal(page.more, true);
  const none = await s.status({ ticket: 'seq', afterSeq: 50 });
  assert.deepEqual(none.lines, []);
  assert.equal(none.nextSeq, 51);
});

test('a retried start with the same ticket runs the script once, also from a new service', async () => {
  const marker = join(dir, 'marker');
  const request = { ticket: 'once', syntax: 'bash' as const, body: `echo ran >> '${marker}'; sleep 0.3; echo done` };
  const first = service();
  const answers = await Promise.all([first.start(request), first.start(request), first.start(request)]);
  assert.ok(answers.every((a) => a.ticket === 'once' && a.state === 'Running'));
  await first.close();
  const second = service();
  assert.equal((await second.start(request)).ticket, 'once');
  const result = await finished(second, 'once');
  assert.equal(result.exitCode, 0);
  assert.deepEqual(texts(result.lines, 'stdout'), ['done']);
  assert.equal(await readFile(marker, 'utf8'), 'ran\n');
  assert.deepEqual(await second.start(request), { ticket: 'once', state: 'Complete', exitCode: 0, cancelled: false });
  assert.equal(await readFile(marker, 'utf8'), 'ran\n');
});

test('complete deletes the workspace and leaves a tombstone that refuses a late start', async () => {
  const s = service();
  await s.start({ ticket: 'done', syntax: 'bash', body: 'sleep 0.3' });
  await assert.rejects(s.complete({ ticket: 'done' }), (e) => isReefError(e, 'REEF_TICKET_RUNNING'));
  await finished(s, 'done');
  assert.deepEqual(await s.complete({ ticket: 'done' }), { ticket: 'done' });
  assert.deepEqual(await s.complete({ ticket: 'done' }), { ticket: 'done' }, 'idempotent');
  assert.deepEqual(await readdir(join(workspaceDir, 'done')), ['completed']);
  const late = { ticket: 'done', syntax: 'bash' as const, body: 'echo again' };
  await assert.rejects(s.start(late), (e) => isReefError(e, 'REEF_TICKET_COMPLETED'));
  await assert.rejects(s.status({ ticket: 'done' }), (e) => isReefError(e, 'REEF_TICKET_COMPLETED'));
  await s.close();
  await assert.rejects(service().start(late), (e) => isReefError(e, 'REEF_TICKET_COMPLETED'));
  // A ticket completed before its start arrived is refused as well.
  const s2 = service();
  await s2.complete({ ticket: 'never-started' });
  await assert.rejects(s2.start({ ...late, ticket: 'never-started' }), (e) => isReefError(e, 'REEF_TICKET_COMPLETED'));
});

test('bad tickets and working directories are refused before anything touches the disk', async () => {
  const s = service();
  for (const ticket of ['../x', '', 'a/b', 'x'.repeat(101), 'a b', '..', 'é']) {
    await assert.rejects(s.start({ ticket, syntax: 'bash', body: 'true' }), (e) => isReefError(e, 'REEF_INVALID_ARGUMENT'), ticket);
    await assert.rejects(s.status({ ticket }), (e) => isReefError(e, 'REEF_INVALID_ARGUMENT'), ticket);
  }
  await assert.rejects(s.status({ ticket: 'unknown' }), (e) => isReefError(e, 'REEF_NOT_FOUND'));
  await assert.rejects(
    s.start({ ticket: 'x', syntax: 'bash', body: 'true', cwd: join(dir, 'nope') }),
    (e) => isReefError(e, 'REEF_BAD_CWD'),
  );
  assert.deepEqual(await readdir(workspaceDir), []);
});

test('a missing pwsh is a clear REEF_SHELL_UNAVAILABLE error', async () => {
  const s = service({ shells: { pwsh: null } });
  await assert.rejects(s.start({ ticket: 'ps', syntax: 'powershell', body: 'Write-Output hi' }), (e) => {
    assert.ok(isReefError(e, 'REEF_SHELL_UNAVAILABLE'));
    assert.match(e.message, /pwsh/);
    return true;
  });
  await assert.rejects(s.status({ ticket: 'ps' }), (e) => isReefError(e, 'REEF_NOT_FOUND'));
});

test('cancel kills the whole process tree', async () => {
  const s = service();
  const childPidFile = join(dir, 'child.pid');
  await s.start({ ticket: 'tree', syntax: 'bash', body: 'sleep 1000 & echo $! > "$1"; echo started; wait', args: [childPidFile] });
  await metaPid('tree');
  const childPid = await waitFor('the child pid', async () => {
    const text = await readFile(childPidFile, 'utf8').catch(() => '');
    return text.endsWith('\n') ? Number(text) : undefined;
  });
  assert.ok(await isAlive(childPid));
  // The pid file is written before `echo started`: a cancel right after it could stop the
  // script before the echo. Cancel once the line is in the durable log.
  await waitFor('the "started" line', async () => (texts((await s.status({ ticket: 'tree' })).lines, 'stdout').includes('started') ? true : undefined));
  const summary = await s.cancel({ ticket: 'tree' });
  assert.equal(summary.state, 'Complete');
  assert.equal(summary.cancelled, true);
  assert.equal(summary.exitCode, 143);
  assert.equal(await isAlive(childPid), false, 'the background child is gone');
  const result = await everything(s, 'tree');
  assert.deepEqual(texts(result.lines, 'stdout'), ['started']);
  assert.match(texts(result.lines, 'system').join('\n'), /Cancel requested/);
  assert.deepEqual(await s.cancel({ ticket: 'tree' }), summary, 'cancelling again changes nothing');
});

test('cancel escalates to SIGKILL when the script ignores SIGTERM', async () => {
  const s = service({ cancelGraceMs: 300 });
  const childPidFile = join(dir, 'child.pid');
  await s.start({
    ticket: 'stubborn',
    syntax: 'bash',
    body: `trap '' TERM; sleep 1000 & echo $! > "$1"; while true; do sleep 0.05; done`,
    args: [childPidFile],
  });
  await metaPid('stubborn');
  const childPid = await waitFor('the child pid', async () => {
    const text = await readFile(childPidFile, 'utf8').catch(() => '');
    return text.endsWith('\n') ? Number(text) : undefined;
  });
  const summary = await s.cancel({ ticket: 'stubborn' });
  assert.equal(summary.cancelled, true);
  assert.equal(summary.exitCode, 137);
  assert.equal(await isAlive(childPid), false);
  assert.match(texts((await everything(s, 'stubborn')).lines, 'system').join('\n'), /SIGKILL/);
});

test('a timeout cancels the script', async () => {
  const s = service();
  await s.start({ ticket: 'slow', syntax: 'bash', body: 'echo hi; sleep 5', timeoutMs: 200 });
  await metaPid('slow');
  const result = await finished(s, 'slow');
  assert.equal(result.state, 'Complete');
  assert.equal(result.cancelled, true);
  assert.equal(result.timedOut, true);
  assert.match(texts(result.lines, 'system').join('\n'), /timeout of 200 ms/);
});

test('a script outlives its ScriptService; the next one reports its full log and exit code', async () => {
  const first = service();
  await first.start({
    ticket: 'survivor',
    syntax: 'bash',
    body: "echo before; printf 'par'; sleep 0.5; printf 'tial\\n'; echo oops >&2; echo after; exit 7",
  });
  await metaPid('survivor');
  await waitFor('the first line', async () => ((await first.status({ ticket: 'survivor' })).lines.length > 0 ? true : undefined));
  await first.close(); // the Tentacle goes away mid-line
  await waitFor('the script to end', async () => ((await stat(join(workspaceDir, 'survivor', 'exit')).catch(() => null)) ? true : undefined));

  const second = service();
  const result = await finished(second, 'survivor');
  assert.equal(result.state, 'Complete');
  assert.equal(result.exitCode, 7);
  assertDense(result.lines);
  assert.deepEqual(texts(result.lines, 'stdout'), ['before', 'partial', 'after']);
  assert.deepEqual(texts(result.lines, 'stderr'), ['oops']);
  assert.deepEqual(texts(result.lines, 'system'), []);
});

test('a script still running at restart is adopted and followed to its end', async () => {
  const first = service();
  await first.start({ ticket: 'adopted', syntax: 'bash', body: 'echo one; sleep 0.6; echo two' });
  await metaPid('adopted');
  await first.close();
  const second = service();
  assert.equal((await second.status({ ticket: 'adopted' })).state, 'Running');
  const result = await finished(second, 'adopted');
  assert.equal(result.exitCode, 0);
  assert.deepEqual(texts(result.lines, 'stdout'), ['one', 'two']);
});

test('a script whose process died while the Tentacle was down is reported Orphaned', async () => {
  const first = service();
  await first.start({ ticket: 'killed', syntax: 'bash', body: 'echo hi; sleep 1000' });
  const pgid = await metaPid('killed');
  await waitFor('output', async () => ((await first.status({ ticket: 'killed' })).lines.length > 0 ? true : undefined));
  await first.close();
  process.kill(-pgid, 'SIGKILL'); // the wrapper dies too, so no exit code is written
  await waitFor('the wrapper to die', async () => ((await isAlive(pgid)) ? undefined : true));

  const second = service();
  const result = await finished(second, 'killed');
  assert.equal(result.state, 'Orphaned');
  assert.equal(result.exitCode, undefined);
  assertDense(result.lines);
  assert.deepEqual(texts(result.lines, 'stdout'), ['hi']);
  assert.match(texts(result.lines, 'system').join('\n'), /Tentacle restarted while this script was running; its process is gone/);
});

test('a ticket left with a dead (or reused) pid is Orphaned with the output it wrote', async () => {
  const ticketDir = join(workspaceDir, 'stale');
  await mkdir(ticketDir, { recursive: true });
  const dead = spawnSync('true').pid;
  // Our own pid with a wrong start time stands for a pid reused by another process.
  for (const [ticket, pid, pidStartTime] of [
    ['stale', dead, null],
    ['reused', process.pid, '1'],
  ] as const) {
    const d = join(workspaceDir, ticket);
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'meta.json'), JSON.stringify({ pid, pidStartTime, startedAt: new Date().toISOString() }));
    await writeFile(join(d, 'stdout.log'), 'hello\ntail without newline');
    await writeFile(join(d, 'stderr.log'), 'warn\n');
  }
  // A directory claimed by a start that never recorded its process.
  await mkdir(join(workspaceDir, 'half-started'));

  const s = service();
  for (const ticket of ['stale', 'reused']) {
    const result = await finished(s, ticket);
    assert.equal(result.state, 'Orphaned', ticket);
    assertDense(result.lines);
    assert.deepEqual(texts(result.lines, 'stdout'), ['hello', 'tail without newline']);
    assert.deepEqual(texts(result.lines, 'stderr'), ['warn']);
    assert.match(result.lines.at(-1)?.text ?? '', /Tentacle restarted/);
  }
  const half = await finished(s, 'half-started');
  assert.equal(half.state, 'Orphaned');
  assert.match(half.lines.at(-1)?.text ?? '', /may not have run/);
  // The verdict is durable: a later service reports the same without a second message.
  await s.close();
  const again = await everything(service(), 'stale');
  assert.equal(again.state, 'Orphaned');
  assert.equal(texts(again.lines, 'system').length, 1);
});

test('10,000 lines arrive complete and in order, also read back after a restart', async () => {
  const s = service();
  await s.start({ ticket: 'many', syntax: 'bash', body: 'seq 1 10000; seq 1 3 >&2' });
  const result = await finished(s, 'many');
  assert.equal(result.exitCode, 0);
  assert.equal(result.lines.length, 10003);
  assertDense(result.lines);
  assert.deepEqual(
    texts(result.lines, 'stdout'),
    Array.from({ length: 10000 }, (_, i) => String(i + 1)),
  );
  await s.close();
  const after = service();
  const tail = await after.status({ ticket: 'many', afterSeq: 9000, maxLines: 5 });
  assert.deepEqual(
    tail.lines.map((l) => l.seq),
    [9001, 9002, 9003, 9004, 9005],
  );
  assert.equal((await everything(after, 'many', 777)).lines.length, 10003);
});

test('long lines are split at 64 KiB; CR LF and invalid UTF-8 are handled', async () => {
  const s = service();
  await s.start({
    ticket: 'long',
    syntax: 'bash',
    body: "head -c 200000 /dev/zero | tr '\\0' a; echo; printf 'crlf\\r\\nbad\\377x\\n'; printf 'no newline at end'",
  });
  const result = await finished(s, 'long');
  assert.deepEqual(
    result.lines.map((l) => l.text.length),
    [65536, 65536, 65536, 200000 - 3 * 65536, 4, 5, 17],
  );
  assert.deepEqual(
    result.lines.slice(4).map((l) => l.text),
    ['crlf', 'bad\uFFFDx', 'no newline at end'],
  );
});

test('3 MB of NUL bytes: every answer stays within the status budget, and every byte is there', async () => {
  const s = service();
  await s.start({ ticket: 'nuls', syntax: 'sh', body: 'head -c 3000000 /dev/zero; echo done' });
  await finished(s, 'nuls', 30_000);
  const lines: ScriptLogLine[] = [];
  let afterSeq = 0;
  let answers = 0;
  for (;;) {
    const page = await s.status({ ticket: 'nuls', afterSeq, maxLines: 1000 });
    answers++;
    assert.ok(page.lines.length >= 1 || !page.more, 'an answer with more to come holds at least one line');
    const encoded = Buffer.byteLength(JSON.stringify(page.lines));
    assert.ok(encoded <= STATUS_ANSWER_BUDGET_BYTES, `an answer's lines are ${encoded} bytes as JSON`);
    lines.push(...page.lines);
    afterSeq = page.nextSeq - 1;
    if (!page.more) break;
  }
  // 3,000,000 NULs as JSON are 18 MB: many answers, each short of the budget.
  assert.ok(answers >= 18, `${answers} answers`);
  assert.ok(lines.every((l) => l.text.length <= MAX_LOG_LINE_BYTES));
  const text = lines.map((l) => l.text).join('');
  assert.equal(text.split('\0').length - 1, 3_000_000);
  assert.ok(lines.at(-1)!.text.endsWith('done'));
  assertDense(lines);
});

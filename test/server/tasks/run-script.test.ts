/**
 * What a machine's run-script part does with each answer of its Tentacle: a scripted
 * Tentacle on the real comms layer answers start, status and cancel as each test says.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CommsServer, Handler, TentacleComms } from '../../../src/comms/index.js';
import { isReefError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/logging.js';
import type { LogStream } from '../../../src/server/store/types.js';
import { TASK_KINDS } from '../../../src/server/tasks/kinds/index.js';
import type { MachineRun } from '../../../src/server/tasks/machine-run.js';
import { routedEndpoint } from '../../../src/server/tentacle-client.js';
import { connected, startPollingTentacle, startServer, testIdentities } from '../../comms/harness.js';

const AT = '2026-12-02T10:00:00.000Z';
const kind = TASK_KINDS['run-script'];
const spec = { script: { syntax: 'sh' as const, body: 'echo hi' }, timeoutSeconds: 60 };

let server: CommsServer;
let tentacle: TentacleComms;
let thumbprint: string;
/** Calls the Tentacle received, by method. */
const calls: { method: string; args: Record<string, unknown> }[] = [];
/** The status answers still to give, in order; the last one repeats. */
let statuses: Record<string, unknown>[] = [];
/** Calls the Tentacle is still answering: one a test gave up on must not reach the next test. */
let inFlight = 0;
/** Ends calls a test held open on purpose. */
let releaseHeld: (() => void) | undefined;
/** Runs when a status call arrives; the answer waits for what it returns. */
let onStatus: (() => void | Promise<void>) | undefined;

before(async () => {
  const ids = await testIdentities();
  thumbprint = ids.tentacle.thumbprint;
  const started = await startServer(new Set([thumbprint]));
  server = started.server;
  const record = (method: string, answer: (args: Record<string, unknown>) => unknown): Handler => async (args) => {
    calls.push({ method, args: args as Record<string, unknown> });
    inFlight++;
    try {
      return await answer(args as Record<string, unknown>);
    } finally {
      inFlight--;
    }
  };
  tentacle = (
    await startPollingTentacle(started.port, {
      'scripts.start': record('scripts.start', (args) => ({ ticket: args.ticket, state: 'Running' })),
      'scripts.status': record('scripts.status', async () => {
        await onStatus?.();
        return statuses.length > 1 ? statuses.shift() : statuses[0];
      }),
      'scripts.cancel': record('scripts.cancel', (args) => ({ ticket: args.ticket, state: 'Running' })),
      'scripts.complete': record('scripts.complete', (args) => ({ ticket: args.ticket })),
    })
  ).comms;
  await connected(server, thumbprint);
});

after(async () => {
  await tentacle.close();
  await server.close();
});

beforeEach(async () => {
  releaseHeld?.();
  releaseHeld = undefined;
  for (let i = 0; i < 250 && inFlight > 0; i++) await sleep(20);
  calls.length = 0;
  statuses = [];
  onStatus = undefined;
});

/** One machine's run, with the parts run-script does not use left out. */
function machineRun(cancel = new AbortController(), options: { graceMs?: number; startedAt?: string | null } = {}) {
  const stored: { tentacleSeq: number; stream: LogStream; text: string }[] = [];
  const notes: string[] = [];
  let cursor = 0;
  const run = {
    taskMachine: { ticket: 'tm-1', startedAt: options.startedAt ?? null },
    graceMs: options.graceMs ?? 30_000,
    lostContactLimitMs: 30 * 60_000,
    lostContact: async () => {},
    machine: { name: 'web-01' },
    tentacle: routedEndpoint(server, { thumbprint, name: 'web-01' }),
    comms: server,
    logger: silentLogger,
    signal: cancel.signal,
    stopped: new AbortController().signal,
    log: async (_stream: LogStream, text: string) => {
      notes.push(text);
    },
    appendTentacleLines: async (lines: { tentacleSeq: number; stream: LogStream; text: string }[]) => {
      for (const line of lines) {
        stored.push({ tentacleSeq: line.tentacleSeq, stream: line.stream, text: line.text });
        cursor = Math.max(cursor, line.tentacleSeq);
      }
    },
    logCursor: () => cursor,
  } as unknown as MachineRun; // task, store and blobs: not used by run-script
  return { run, stored, notes };
}

const line = (seq: number, stream: string, text: string) => ({ seq, at: AT, stream, text });

test('starts under the ticket, copies every line after the stored cursor, and ends with the exit code', async () => {
  statuses = [
    { ticket: 'tm-1', state: 'Running', lines: [line(1, 'stdout', 'one'), line(2, 'system', 'note')], nextSeq: 3, more: false },
    { ticket: 'tm-1', state: 'Complete', exitCode: 0, cancelled: false, lines: [line(3, 'stderr', 'two')], nextSeq: 4, more: false },
  ];
  const { run, stored } = machineRun();
  assert.deepEqual(await kind.perform(run, spec), { state: 'Success', exitCode: 0 });
  assert.deepEqual(calls[0], { method: 'scripts.start', args: { ticket: 'tm-1', syntax: 'sh', body: 'echo hi', timeoutMs: 60_000 } });
  assert.deepEqual(
    calls.filter((c) => c.method === 'scripts.status').map((c) => c.args.afterSeq),
    [0, 2],
  );
  assert.deepEqual(stored, [
    { tentacleSeq: 1, stream: 'stdout', text: 'one' },
    { tentacleSeq: 2, stream: 'info', text: 'note' },
    { tentacleSeq: 3, stream: 'stderr', text: 'two' },
  ]);
});

test('a finished script with more lines waiting is read to its end before the outcome', async () => {
  statuses = [
    { ticket: 'tm-1', state: 'Complete', exitCode: 2, lines: [line(1, 'stdout', 'a')], nextSeq: 2, more: true },
    { ticket: 'tm-1', state: 'Complete', exitCode: 2, lines: [line(2, 'stdout', 'b')], nextSeq: 3, more: false },
  ];
  const { run, stored } = machineRun();
  assert.deepEqual(await kind.perform(run, spec), { state: 'Failed', exitCode: 2, error: 'The script exited with code 2.' });
  assert.deepEqual(stored.map((l) => l.text), ['a', 'b']);
});

test('a cancelled task asks the Tentacle to cancel and still collects the final lines', async () => {
  const cancel = new AbortController();
  statuses = [
    { ticket: 'tm-1', state: 'Running', lines: [], nextSeq: 1, more: false },
    { ticket: 'tm-1', state: 'Complete', exitCode: 143, cancelled: true, lines: [line(1, 'system', 'Cancel requested')], nextSeq: 2, more: false },
  ];
  const { run, stored } = machineRun(cancel);
  onStatus = () => cancel.abort(); // once the start is confirmed
  const outcome = await kind.perform(run, spec);
  assert.equal(outcome.state, 'Cancelled');
  assert.ok(calls.some((c) => c.method === 'scripts.cancel' && c.args.ticket === 'tm-1'));
  assert.deepEqual(stored.map((l) => l.text), ['Cancel requested']);
});

test('a status answer breaking the contract fails the part with REEF_PROTOCOL_ERROR and stores nothing of it', async () => {
  statuses = [{ ticket: 'tm-1', state: 'Running', lines: Array.from({ length: 1001 }, (_, i) => line(i + 1, 'stdout', 'x')), nextSeq: 1002, more: false }];
  const { run, stored } = machineRun();
  await assert.rejects(kind.perform(run, spec), (err) => {
    assert.ok(isReefError(err, 'REEF_PROTOCOL_ERROR'));
    assert.match(err.message, /Tentacle "web-01".*scripts\.status.*lines must hold at most the 1000 lines asked for, not 1001/);
    return true;
  });
  assert.deepEqual(stored, []);
});

test('release tells the Tentacle it may forget the ticket', async () => {
  const { run } = machineRun();
  await kind.release!(run);
  assert.deepEqual(calls, [{ method: 'scripts.complete', args: { ticket: 'tm-1' } }]);
});

describe('the server bounds a script whatever its Tentacle says', () => {
  const running = { ticket: 'tm-1', state: 'Running', lines: [], nextSeq: 1, more: false };
  /** A Tentacle answers "Running" after a while (a real one long-polls), not in a tight loop. */
  const slowly = () => sleep(20);
  /** The cancel is sent without waiting for it; it reaches the Tentacle a moment later. */
  async function cancelArrives() {
    for (let i = 0; i < 100 && !calls.some((c) => c.method === 'scripts.cancel'); i++) await sleep(20);
    return calls.some((c) => c.method === 'scripts.cancel');
  }

  test('a Tentacle that ignores the timeout: TimedOut after the grace, with a cancel sent and a note', async () => {
    statuses = [running];
    onStatus = slowly;
    const { run, notes } = machineRun(new AbortController(), { graceMs: 300 });
    const began = Date.now();
    const outcome = await kind.perform(run, { ...spec, timeoutSeconds: 1 });
    assert.equal(outcome.state, 'TimedOut');
    assert.match(outcome.error ?? '', /longer than its timeout \(1 s\).*did not report it stopped.*may still be running on "web-01"/);
    assert.ok(Date.now() - began >= 1300, 'not before the timeout and its grace');
    assert.ok(await cancelArrives(), 'the Tentacle is asked to stop it');
    assert.match(notes.join('\n'), /did not stop the script within \S+ s of its timeout/);
  });

  test('a status call that never answers is ended by the deadline', async () => {
    statuses = [running];
    const held = new Promise<void>((resolve) => (releaseHeld = resolve));
    onStatus = () => held; // holds every status call until the next test begins
    const { run } = machineRun(new AbortController(), { graceMs: 200 });
    const outcome = await kind.perform(run, { ...spec, timeoutSeconds: 1 });
    assert.equal(outcome.state, 'TimedOut');
  });

  test('the timeout counts from when the part started, across a server restart', async () => {
    statuses = [running];
    onStatus = slowly;
    const { run } = machineRun(new AbortController(), { graceMs: 100, startedAt: new Date(Date.now() - 60_000).toISOString() });
    const began = Date.now();
    assert.equal((await kind.perform(run, { ...spec, timeoutSeconds: 5 })).state, 'TimedOut');
    assert.ok(Date.now() - began < 5000, 'ended at once, not 5 s after the restart');
  });

  test('a Tentacle that ignores a cancel: Cancelled after the grace, with a note', async () => {
    const cancel = new AbortController();
    statuses = [running];
    onStatus = () => {
      // Only this test's calls: a call the previous test gave up on may still arrive first.
      if (calls.some((c) => c.method === 'scripts.start')) cancel.abort();
      return slowly();
    };
    const { run, notes } = machineRun(cancel, { graceMs: 300 });
    const outcome = await kind.perform(run, spec);
    assert.deepEqual(outcome, { state: 'Cancelled', exitCode: null, error: null });
    assert.ok(await cancelArrives());
    assert.match(notes.join('\n'), /did not confirm the cancel within \S+ s; the server marks this part Cancelled.*may still be running on "web-01"/);
  });

  test('a Tentacle that reports in time is believed, and no note is added', async () => {
    const cancel = new AbortController();
    statuses = [running, { ticket: 'tm-1', state: 'Complete', exitCode: 143, cancelled: true, lines: [], nextSeq: 1, more: false }];
    onStatus = () => {
      if (calls.some((c) => c.method === 'scripts.start')) cancel.abort();
    };
    const { run, notes } = machineRun(cancel, { graceMs: 5000 });
    assert.equal((await kind.perform(run, spec)).state, 'Cancelled');
    assert.deepEqual(notes, []);
  });
});

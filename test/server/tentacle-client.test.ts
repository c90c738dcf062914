/**
 * The server's typed calls against a hostile Tentacle: a test double on the real comms
 * layer (real TLS, a registered certificate) whose methods answer whatever a test sets.
 * Every bad answer must fail its own call with REEF_PROTOCOL_ERROR naming the Tentacle
 * and the field, be counted, and leave the server serving.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { MAX_LOG_LINE_BYTES } from '../../src/api/tentacle/index.js';
import type { CommsServer, Handler, TentacleComms } from '../../src/comms/index.js';
import { isReefError } from '../../src/errors.js';
import { callTentacle, connectionEndpoint, protocolErrors, routedEndpoint, type TentacleEndpoint } from '../../src/server/tentacle-client.js';
import { learnProxyCarrier } from '../../src/server/tentacle-carrier.js';
import type { ScriptService } from '../../src/tentacle/services/scripts/index.js';
import { connected, startPollingTentacle, startServer, testIdentities } from '../comms/harness.js';
import { realTentacleServices } from '../support/tentacle-services.js';

const AT = '2026-12-02T10:00:00.000Z';
const line = (seq: number, text = 'x') => ({ seq, at: AT, stream: 'stdout', text });
const status = (lines: unknown[], extra: Record<string, unknown> = {}) => ({
  ticket: 't1',
  state: 'Running',
  lines,
  nextSeq: ((lines.at(-1) as { seq?: number } | undefined)?.seq ?? 0) + 1,
  more: false,
  ...extra,
});

/** Rejects with REEF_PROTOCOL_ERROR whose message matches every pattern, counted once. */
async function refused(call: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  const before = protocolErrors.count;
  await assert.rejects(call, (err) => {
    assert.ok(isReefError(err, 'REEF_PROTOCOL_ERROR'), String(err));
    for (const pattern of patterns) assert.match(err.message, pattern);
    return true;
  });
  assert.equal(protocolErrors.count, before + 1, 'the refused answer is counted');
}

describe('a hostile Tentacle', () => {
  let server: CommsServer;
  let hostile: TentacleComms;
  let tentacle: TentacleEndpoint;
  let thumbprint: string;
  /** What each method answers; a test sets the ones it needs. */
  const answers = new Map<string, (args: unknown) => unknown>();
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);

  before(async () => {
    process.on('unhandledRejection', onRejection);
    const ids = await testIdentities();
    thumbprint = ids.tentacle.thumbprint;
    // Large frames allowed on both ends: the contract, not the frame limit, must refuse a flood.
    const limits = { maxMessageBytes: 64 * 1024 * 1024 };
    const started = await startServer(new Set([thumbprint]), limits);
    server = started.server;
    const table: Record<string, Handler> = {};
    for (const method of ['health.ping', 'capabilities.get', 'scripts.start', 'scripts.status', 'scripts.cancel', 'scripts.complete', 'files.beginUpload', 'files.upload']) {
      table[method] = async (args) => {
        const answer = answers.get(method);
        if (!answer) throw new Error(`the test set no answer for ${method}`);
        return answer(args);
      };
    }
    hostile = (await startPollingTentacle(started.port, table, { limits })).comms;
    await connected(server, thumbprint);
    tentacle = routedEndpoint(server, { thumbprint, name: 'shop-17' });
  });

  beforeEach(() => answers.clear());

  after(async () => {
    process.off('unhandledRejection', onRejection);
    await hostile.close();
    await server.close();
    assert.deepEqual(rejections, [], 'nothing the Tentacle sent escaped a call');
  });

  test('a ping whose carrier is a number fails that call, naming the Tentacle and the field', async () => {
    answers.set('health.ping', () => ({ time: AT, carrier: 42 }));
    await refused(callTentacle(tentacle, 'health.ping', {}), /Tentacle "shop-17" \(/, new RegExp(thumbprint), /health\.ping/, /carrier must be a string/);
  });

  test('answers that are not objects fail their call', async () => {
    for (const answer of [null, 'pong', 42, [1, 2], true]) {
      answers.set('health.ping', () => answer);
      await refused(callTentacle(tentacle, 'health.ping', {}), /the answer must be an object/);
    }
  });

  test('a status with 200,000 lines is refused with a short message, and the server keeps serving', async () => {
    const flood = Array.from({ length: 200_000 }, (_, i) => line(i + 1));
    answers.set('scripts.status', () => status(flood));
    const started = Date.now();
    await refused(callTentacle(tentacle, 'scripts.status', { ticket: 't1', afterSeq: 0, maxLines: 1000 }), /lines must hold at most 10000 lines/);
    assert.ok(Date.now() - started < 30_000);
    answers.set('health.ping', () => ({ time: AT, carrier: 'tcp' }));
    assert.deepEqual(await callTentacle(tentacle, 'health.ping', {}), { time: AT, carrier: 'tcp' });
  });

  test('a status with more lines than asked, or lines out of order, is refused', async () => {
    answers.set('scripts.status', () => status([line(1), line(2), line(3)]));
    await refused(callTentacle(tentacle, 'scripts.status', { ticket: 't1', afterSeq: 0, maxLines: 2 }), /lines must hold at most the 2 lines asked for, not 3/);
    answers.set('scripts.status', () => status([line(5), line(4)]));
    await refused(callTentacle(tentacle, 'scripts.status', { ticket: 't1', afterSeq: 0 }), /lines\.1\.seq must be greater than 5/);
    answers.set('scripts.status', () => status([line(3)]));
    await refused(callTentacle(tentacle, 'scripts.status', { ticket: 't1', afterSeq: 7 }), /lines\.0\.seq must be greater than 7/);
    answers.set('scripts.status', () => ({ ...status([line(1)]), nextSeq: 100 }));
    await refused(callTentacle(tentacle, 'scripts.status', { ticket: 't1', afterSeq: 0 }), /nextSeq must be 2/);
  });

  test('a log line over the line limit is cut with a marker, not refused', async () => {
    answers.set('scripts.status', () => status([line(1, 'y'.repeat(1024 * 1024)), line(2, 'short')]));
    const answer = await callTentacle(tentacle, 'scripts.status', { ticket: 't1', afterSeq: 0 });
    const [cut, short] = answer.lines.map((l) => l.text);
    assert.equal(cut!.slice(0, MAX_LOG_LINE_BYTES), 'y'.repeat(MAX_LOG_LINE_BYTES));
    assert.match(cut!.slice(MAX_LOG_LINE_BYTES), /^ \[… line cut by the Reef server: 983040 more characters over the 65536-character line limit\]$/);
    assert.equal(short, 'short');
    // A surrogate pair across the limit is left out whole rather than split.
    answers.set('scripts.status', () => status([line(1, `${'y'.repeat(MAX_LOG_LINE_BYTES - 1)}😀tail`)]));
    const [pair] = (await callTentacle(tentacle, 'scripts.status', { ticket: 't1', afterSeq: 0 })).lines;
    assert.match(pair!.text, /^y{65535} \[… line cut by the Reef server: 6 more characters/);
  });

  test('oversized texts, unknown states and another ticket are refused', async () => {
    answers.set('scripts.start', () => ({ ticket: 't1', state: 'Exploded' }));
    await refused(callTentacle(tentacle, 'scripts.start', { ticket: 't1', syntax: 'sh', body: 'true' }), /state must be "Running", "Complete" or "Orphaned"/);
    answers.set('scripts.cancel', () => ({ ticket: 'someone-else', state: 'Complete' }));
    await refused(callTentacle(tentacle, 'scripts.cancel', { ticket: 't1' }), /ticket must be t1, the ticket asked about/);
    answers.set('capabilities.get', () => ({
      tentacleVersion: '1',
      os: { platform: 'linux', release: '6', arch: 'x64' },
      hostname: 'h'.repeat(10_000),
      shells: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`sh${i}`, '/bin/sh'])),
      nodeVersion: 'v20',
      time: AT,
    }));
    await refused(callTentacle(tentacle, 'capabilities.get', {}), /hostname must be at most 255 characters/, /shells must name at most 32 shells/);
    answers.set('files.beginUpload', () => ({ offset: 11 }));
    await refused(callTentacle(tentacle, 'files.beginUpload', { path: '/tmp/x', size: 10, sha256: 'a'.repeat(64) }), /offset must be at most the file's size, 10/);
  });

  test('a message names at most five problems', async () => {
    answers.set('scripts.status', () => status(Array.from({ length: 50 }, (_, i) => ({ seq: i + 1, at: 'yesterday', stream: 'stdout', text: 'x' }))));
    await refused(callTentacle(tentacle, 'scripts.status', { ticket: 't1', afterSeq: 0 }), /\(and 45 more problems\)/);
  });

  test('unknown fields in an answer are dropped, for a newer Tentacle', async () => {
    answers.set('health.ping', () => ({ time: AT, carrier: 'tcp', load: 0.5 }));
    assert.deepEqual(await callTentacle(tentacle, 'health.ping', {}), { time: AT, carrier: 'tcp' });
  });

  test('learning the carrier from a bad ping logs it and changes nothing', async () => {
    const client = server.links.pick(thumbprint)!;
    const logged: string[] = [];
    const logger = pino({ level: 'warn' }, new Writable({ write: (chunk, _enc, done) => (logged.push(String(chunk)), done()) }));
    answers.set('health.ping', () => ({ time: AT, carrier: 42 }));
    assert.equal(await learnProxyCarrier(client, logger), false);
    assert.equal(client.peer.carrier, 'tcp');
    assert.match(logged.join(''), /invalid ping answer ignored/);
    assert.match(logged.join(''), /carrier must be a string/);
    answers.set('health.ping', () => ({ time: AT, carrier: 'tcp+proxy' }));
    assert.equal(await learnProxyCarrier(client, logger), true);
    assert.equal(client.peer.carrier, 'tcp+proxy');
    assert.equal(await learnProxyCarrier(client, logger), false, 'marked once');
  });
});

describe('the real Tentacle services', () => {
  let dir: string;
  let server: CommsServer;
  let comms: TentacleComms;
  let scripts: ScriptService;
  let tentacle: TentacleEndpoint;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'reef-tentacle-client-'));
    const ids = await testIdentities();
    const started = await startServer(new Set([ids.tentacle.thumbprint]));
    server = started.server;
    let table: Record<string, Handler>;
    ({ scripts, table } = realTentacleServices(dir));
    comms = (await startPollingTentacle(started.port, table)).comms;
    const client = await connected(server, ids.tentacle.thumbprint);
    tentacle = connectionEndpoint(client);
  });

  after(async () => {
    await comms.close();
    await server.close();
    await scripts.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('answer within the contract', async () => {
    const before = protocolErrors.count;
    assert.equal((await callTentacle(tentacle, 'health.ping', {})).carrier, 'tcp');
    const caps = await callTentacle(tentacle, 'capabilities.get', {});
    assert.equal(caps.os.platform, process.platform);
    assert.equal((await callTentacle(tentacle, 'scripts.start', { ticket: 'real', syntax: 'sh', body: 'echo one; echo two >&2' })).state, 'Running');
    let status;
    do status = await callTentacle(tentacle, 'scripts.status', { ticket: 'real', afterSeq: 0, waitMs: 5000 });
    while (status.state === 'Running' || status.lines.length < 2);
    assert.deepEqual(status.lines.map((l) => l.text).sort(), ['one', 'two']);
    assert.deepEqual(await callTentacle(tentacle, 'scripts.complete', { ticket: 'real' }), { ticket: 'real' });
    assert.equal(protocolErrors.count, before);
  });
});

test('a wrong method, argument or result type does not compile (checked by tsc)', () => {
  const neverCalled = async (endpoint: TentacleEndpoint) => {
    // @ts-expect-error: "cmd" is not a syntax of the contract
    await callTentacle(endpoint, 'scripts.start', { ticket: 't', syntax: 'cmd', body: '' });
    // @ts-expect-error: no such method
    await callTentacle(endpoint, 'scripts.delete', { ticket: 't' });
    // @ts-expect-error: afterSeq is required
    await callTentacle(endpoint, 'scripts.status', { ticket: 't' });
    const pong = await callTentacle(endpoint, 'health.ping', {});
    // @ts-expect-error: carrier is a string
    const carrier: number = pong.carrier;
    return carrier;
  };
  assert.equal(typeof neverCalled, 'function');
});

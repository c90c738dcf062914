import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TENTACLE_METHODS, type ScriptStatus, type ScriptSummary } from '../../src/api/tentacle/index.js';
import type { CallContext, ServiceTable } from '../../src/comms/index.js';
import { isReefError, ReefError } from '../../src/errors.js';
import { silentLogger } from '../../src/logging.js';
import { createTentacleServices } from '../../src/tentacle/rpc-services.js';
import { CapabilitiesService } from '../../src/tentacle/services/capabilities.js';
import { FileService } from '../../src/tentacle/services/files.js';
import { ScriptService } from '../../src/tentacle/services/scripts/index.js';

/** The method table called directly, for what is awkward to reach over a connection. */

let dir: string;
let scripts: ScriptService;
let table: ServiceTable;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reef-rpc-services-'));
  scripts = new ScriptService({ workspaceDir: join(dir, 'workspace'), logger: silentLogger, pollIntervalMs: 20, cancelGraceMs: 500 });
  table = createTentacleServices({
    scripts,
    files: new FileService({ allowedRoots: [dir], logger: silentLogger }),
    capabilities: new CapabilitiesService(),
    logger: silentLogger,
    statusPollMs: 20,
  });
});

after(async () => {
  await scripts.cancel({ ticket: 'abortable' }).catch(() => undefined);
  await scripts.close();
  await rm(dir, { recursive: true, force: true });
});

function ctx(signal = new AbortController().signal): CallContext {
  return { signal, peer: { thumbprint: 'T', remoteAddress: 'test', carrier: 'test' }, body: null };
}

function call(method: string, args: unknown, context = ctx()) {
  const handler = table.get(method);
  assert.ok(handler, `no handler for ${method}`);
  return handler(args, context);
}

test('every method of the contract is served', () => {
  for (const method of Object.keys(TENTACLE_METHODS)) assert.ok(table.has(method), method);
  assert.equal(table.size, Object.keys(TENTACLE_METHODS).length);
});

test('a long-polling status call ends as soon as its caller aborts', async () => {
  await call('scripts.start', { ticket: 'abortable', syntax: 'sh', body: 'sleep 10' });
  const controller = new AbortController();
  const reason = new ReefError('REEF_CALL_CANCELLED', 'gone');
  setTimeout(() => controller.abort(reason), 100);
  const started = Date.now();
  await assert.rejects(call('scripts.status', { ticket: 'abortable', afterSeq: 0, waitMs: 120_000 }, ctx(controller.signal)), (err) => err === reason);
  assert.ok(Date.now() - started < 2000);
});

test('a status call without waitMs answers at once', async () => {
  const started = Date.now();
  const status = (await call('scripts.status', { ticket: 'abortable', afterSeq: 0 })) as ScriptStatus;
  assert.equal(status.state, 'Running');
  assert.ok(Date.now() - started < 1000);
});

test('argument errors list every bad field', async () => {
  await assert.rejects(call('scripts.status', { afterSeq: 'x', maxLines: 0 }), (err) => {
    assert.ok(isReefError(err, 'REEF_INVALID_ARGUMENT'));
    assert.match(err.message, /^Invalid arguments for scripts\.status: ticket is required; afterSeq must be a whole number; maxLines must be from 1 to 10000\.$/);
    return true;
  });
  await assert.rejects(call('health.ping', 'hello'), (err) => isReefError(err, 'REEF_INVALID_ARGUMENT'));
  assert.ok(await call('health.ping', undefined));
});

test('a start with a syntax, environment or argument the contract refuses runs nothing', async () => {
  await assert.rejects(call('scripts.start', { ticket: 'refused', syntax: 'cmd', body: 'true' }), (err) => {
    assert.ok(isReefError(err, 'REEF_INVALID_ARGUMENT'));
    assert.match(err.message, /syntax must be "bash", "sh" or "powershell"/);
    return true;
  });
  await assert.rejects(call('scripts.start', { ticket: 'refused', syntax: 'sh', body: 'true', env: { 'A=B': 'x', OK: 'a\0b' } }), (err) => {
    assert.ok(isReefError(err, 'REEF_INVALID_ARGUMENT'));
    assert.match(err.message, /env\.OK must not contain NUL characters/);
    assert.match(err.message, /env\.A=B is not a valid environment variable name/);
    return true;
  });
  await assert.rejects(call('scripts.start', { ticket: 'refused', syntax: 'sh', body: 'true', args: ['ok', 7] }), /args\.1 must be strings/);
  await assert.rejects(call('scripts.status', { ticket: 'refused', afterSeq: 0 }), (err) => isReefError(err, 'REEF_NOT_FOUND'));
});

test('unknown argument fields are ignored, so a newer server can add optional ones', async () => {
  const summary = (await call('scripts.start', { ticket: 'newer', syntax: 'sh', body: 'true', priority: 'high' })) as ScriptSummary;
  assert.equal(summary.ticket, 'newer');
});

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { ERRORS_DOC_PATH, renderErrorsDoc } from '../../scripts/docs-errors.js';
import { ERROR_CODES, FORMER_CODES, isErrorCode } from '../../src/error-codes.js';
import { errorFromPeer, LINK_LOST_CODES, receivedCode, ReefError, RETRYABLE_CALL_CODES } from '../../src/errors.js';
import { HttpError, statusOf } from '../../src/server/http/errors.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const CATALOGUE_FILE = 'src/error-codes.ts';

/**
 * `REEF_*` names in src/ that are environment variables, not error codes. A new variable
 * goes here; a new error code goes into src/error-codes.ts.
 */
const ENVIRONMENT_VARIABLES = new Set([
  'REEF_ANONYMOUS_REQUESTS_PER_MINUTE',
  'REEF_API_KEY',
  'REEF_API_REQUESTS_PER_MINUTE',
  'REEF_CA_FILE',
  'REEF_COMMS_PORT',
  'REEF_CONFIG',
  'REEF_DOWNLOADS_DIR',
  'REEF_FILE_RETENTION_DAYS',
  'REEF_FILES_DIR',
  'REEF_HOME',
  'REEF_HOST',
  'REEF_HTTPS_CERTIFICATE',
  'REEF_MAX_EVENT_LOOP_DELAY',
  'REEF_MAX_HANDSHAKES_IN_FLIGHT',
  'REEF_HTTPS_CERTIFICATE_KEY',
  'REEF_HTTPS_CERTIFICATE_PASSWORD',
  'REEF_JOIN_TOKEN',
  'REEF_HTTPS_PORT',
  'REEF_LOG_QUOTA_MIB',
  'REEF_LOST_CONTACT_LIMIT',
  'REEF_METRICS_LISTEN',
  'REEF_NODE_NAME',
  'REEF_PICKUP_TIMEOUT',
  'REEF_POLLING_HOSTNAMES',
  'REEF_PROXY_PROTOCOL',
  'REEF_SERVER',
  'REEF_SERVER_THUMBPRINT',
  'REEF_STORE',
  'REEF_TENTACLE_AGENT_CMD',
  'REEF_TENTACLE_ROOT',
  'REEF_TENTACLE_SERVICE_MODE',
  'REEF_WEBSOCKET_PATH',
]);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

test('docs/errors.md is what `npm run docs:errors` writes from the catalogue', () => {
  assert.equal(readFileSync(ERRORS_DOC_PATH, 'utf8'), renderErrorsDoc(), 'docs/errors.md is stale: run `npm run docs:errors`');
});

test('every REEF_* string in src/ is a catalogued error code (or a known environment variable)', () => {
  const strays: string[] = [];
  for (const file of sourceFiles(join(REPO, 'src'))) {
    const shown = relative(REPO, file);
    if (shown === CATALOGUE_FILE) continue;
    // A string, template or identifier-free literal starting with REEF_: '...', "...", `...`.
    for (const match of readFileSync(file, 'utf8').matchAll(/['"`](REEF_[A-Z0-9][A-Z0-9_]*)/g)) {
      const name = match[1]!;
      if (!isErrorCode(name) && !ENVIRONMENT_VARIABLES.has(name)) strays.push(`${shown}: ${name}`);
    }
  }
  assert.deepEqual(strays, [], 'add these codes to src/error-codes.ts (a new environment variable goes to ENVIRONMENT_VARIABLES here)');
});

test('the catalogue: sorted, well-formed names, statuses, retry values and one-line meanings', () => {
  const codes = Object.keys(ERROR_CODES);
  assert.deepEqual(codes, [...codes].sort(), 'keep src/error-codes.ts in alphabetical order');
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    assert.match(code, /^REEF_[A-Z0-9]+(_[A-Z0-9]+)*$/, code);
    assert.ok(!ENVIRONMENT_VARIABLES.has(code) || code === 'REEF_PROXY_PROTOCOL', `${code} is also an environment variable`);
    assert.ok(info.http === null || (Number.isInteger(info.http) && info.http >= 400 && info.http <= 599), `${code}: HTTP status ${info.http}`);
    assert.ok(['no', 'later', 'reconnect', 'link-lost'].includes(info.retry), `${code}: retry ${info.retry}`);
    assert.match(info.meaning, /^[^\n]{10,200}[.)]$/, `${code}: the meaning is one sentence on one line`);
  }
  for (const [former, today] of Object.entries(FORMER_CODES)) {
    assert.ok(!isErrorCode(former), `${former} is a former code and cannot be a current one`);
    assert.ok(isErrorCode(today), `${former} is read as ${today}, which is not in the catalogue`);
  }
});

test('the retry sets come from the catalogue: link lost is a subset of what Tentacle calls retry', () => {
  assert.deepEqual([...LINK_LOST_CODES].sort(), ['REEF_CALL_RESET', 'REEF_CONNECTION_LOST', 'REEF_HEARTBEAT_TIMEOUT']);
  assert.deepEqual([...RETRYABLE_CALL_CODES].sort(), [
    'REEF_CALL_REFUSED',
    'REEF_CALL_RESET',
    'REEF_CONNECTION_LOST',
    'REEF_CONNECT_FAILED',
    'REEF_HEARTBEAT_TIMEOUT',
    'REEF_SHUTTING_DOWN',
  ]);
});

test('HTTP statuses come from the catalogue; codes without one are not answered with their message', () => {
  assert.equal(new HttpError('REEF_TOO_LARGE', 'x').status, 413);
  assert.equal(statusOf(new ReefError('REEF_NOT_FOUND', 'x')), 404);
  assert.equal(statusOf(new ReefError('REEF_STORE_UNAVAILABLE', 'x')), undefined);
  // @ts-expect-error a code without an HTTP status cannot make an HttpError
  void (() => new HttpError('REEF_STORE_UNAVAILABLE', 'x'));
  // @ts-expect-error an uncatalogued code does not compile
  void (() => new ReefError('REEF_TYPO', 'x'));
});

test('codes from a peer: known codes kept, former names read as today, unknown ones become REEF_PEER_ERROR', () => {
  assert.deepEqual(receivedCode('REEF_NOT_FOUND'), { code: 'REEF_NOT_FOUND' });
  assert.deepEqual(receivedCode('REEF_CLOSED'), { code: 'REEF_SHUTTING_DOWN', receivedAs: 'REEF_CLOSED' });
  assert.deepEqual(receivedCode('REEF_FROM_A_NEWER_TENTACLE'), { code: 'REEF_PEER_ERROR', receivedAs: 'REEF_FROM_A_NEWER_TENTACLE' });
  assert.deepEqual(receivedCode('toString'), { code: 'REEF_PEER_ERROR', receivedAs: 'toString' });
  assert.deepEqual(receivedCode('__proto__'), { code: 'REEF_PEER_ERROR', receivedAs: '__proto__' });
  for (const odd of [undefined, null, 42, {}, ['REEF_NOT_FOUND']]) assert.deepEqual(receivedCode(odd), { code: 'REEF_PEER_ERROR' });
  assert.equal(receivedCode(undefined, 'REEF_REFUSED').code, 'REEF_REFUSED');
  const err = errorFromPeer('REEF_FROM_A_NEWER_TENTACLE', 'it went wrong over there');
  assert.ok(err instanceof ReefError);
  assert.equal(err.code, 'REEF_PEER_ERROR');
  assert.equal(err.receivedAs, 'REEF_FROM_A_NEWER_TENTACLE');
  assert.equal(err.message, 'it went wrong over there');
});

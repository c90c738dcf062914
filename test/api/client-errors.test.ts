import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { ApiCallError, ApiClient } from '../../src/api/client.js';
import { generateCertificate } from '../../src/pki/certificate.js';

/**
 * What the API client makes of error answers, against a small HTTPS server that answers
 * each path with a fixed status and body: the server's own code, a code this version does
 * not know (a newer server's), a former code, and a proxy's page that is not JSON.
 */

const ANSWERS: Record<string, { status: number; body: string }> = {
  '/known': { status: 404, body: JSON.stringify({ error: { code: 'REEF_NOT_FOUND', message: 'No task has id "t-1".' } }) },
  '/newer': { status: 418, body: JSON.stringify({ error: { code: 'REEF_FROM_A_NEWER_SERVER', message: 'Something new went wrong.' } }) },
  '/former': { status: 503, body: JSON.stringify({ error: { code: 'REEF_CLOSED', message: 'Stopping.' } }) },
  '/no-code': { status: 400, body: JSON.stringify({ error: { message: 'No code at all.' } }) },
  '/proxy': { status: 502, body: '<html><body>Bad Gateway</body></html>' },
};

/** Paths answering 429 (Retry-After `retryAfter` s) to their first `refusals` requests, then 200. */
const BUDGETS: Record<string, { refusals: number; retryAfter: number; seen: number }> = {
  '/busy-once': { refusals: 1, retryAfter: 1, seen: 0 },
  '/busy-long': { refusals: 1, retryAfter: 120, seen: 0 },
  '/busy-always': { refusals: Infinity, retryAfter: 1, seen: 0 },
};

let server: https.Server;
let serverAddress: string;
let portalThumbprint: string;
let api: ApiClient;

before(async () => {
  const portal = await generateCertificate('Reef Portal');
  server = https.createServer({ cert: portal.certPem, key: portal.keyPem }, (req, res) => {
    const budget = BUDGETS[req.url ?? ''];
    if (budget) {
      budget.seen++;
      if (budget.seen <= budget.refusals) {
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(budget.retryAfter) });
        res.end(JSON.stringify({ error: { code: 'REEF_TOO_MANY_REQUESTS', message: `Too many requests; try again in ${budget.retryAfter} s.` } }));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true }));
      }
      return;
    }
    const answer = ANSWERS[req.url ?? ''] ?? { status: 500, body: '' };
    res.writeHead(answer.status, { 'content-type': answer.body.startsWith('{') ? 'application/json' : 'text/html' });
    res.end(answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  serverAddress = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  portalThumbprint = portal.thumbprint;
  api = new ApiClient({ server: serverAddress, serverThumbprint: portal.thumbprint });
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function failure(path: string): Promise<ApiCallError> {
  const err = await api.json('GET', path).then(
    () => assert.fail(`GET ${path} succeeded`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApiCallError, `GET ${path}: ${String(err)}`);
  return err;
}

test("a catalogued code is the server's, with the HTTP status", async () => {
  const err = await failure('/known');
  assert.deepEqual([err.code, err.status, err.message, err.receivedAs], ['REEF_NOT_FOUND', 404, 'No task has id "t-1".', undefined]);
});

test('a code this version does not know is REEF_PEER_ERROR, keeping the message, the status and the code as sent', async () => {
  const err = await failure('/newer');
  assert.deepEqual([err.code, err.status, err.message, err.receivedAs], ['REEF_PEER_ERROR', 418, 'Something new went wrong.', 'REEF_FROM_A_NEWER_SERVER']);
  assert.deepEqual([(await failure('/no-code')).code, (await failure('/no-code')).status], ['REEF_PEER_ERROR', 400]);
});

test("a former code is read as today's", async () => {
  const err = await failure('/former');
  assert.deepEqual([err.code, err.receivedAs], ['REEF_SHUTTING_DOWN', 'REEF_CLOSED']);
});

test('an error page without a Reef error body is REEF_BAD_RESPONSE with its status', async () => {
  const err = await failure('/proxy');
  assert.equal(err.code, 'REEF_BAD_RESPONSE');
  assert.equal(err.status, 502);
  assert.match(err.message, /GET \/proxy failed with HTTP 502: <html>/);
});

test("a request refused for the server's request budget (429) is sent again after its Retry-After, within the client's wait", async () => {
  const started = Date.now();
  assert.deepEqual(await api.json('POST', '/busy-once', { body: { name: 'm-1' } }), { ok: true });
  assert.ok(Date.now() - started >= 900, 'waited the Retry-After second');
  assert.equal(BUDGETS['/busy-once']!.seen, 2);

  // Longer than the client waits: refused at once, saying so.
  const long = await failure('/busy-long');
  assert.deepEqual([long.code, long.status, long.retryAfterSeconds], ['REEF_TOO_MANY_REQUESTS', 429, 120]);
  assert.equal(BUDGETS['/busy-long']!.seen, 1);

  // Refused every time: the wait is bounded, then the 429 is the answer.
  const patient = new ApiClient({ server: serverAddress, serverThumbprint: portalThumbprint, rateLimitWaitMs: 2000 });
  const err = await patient.json('GET', '/busy-always').then(() => assert.fail('succeeded'), (e: unknown) => e as ApiCallError);
  assert.deepEqual([err.code, err.status], ['REEF_TOO_MANY_REQUESTS', 429]);
  assert.equal(BUDGETS['/busy-always']!.seen, 3, 'the first try and two waits of 1 s');
});

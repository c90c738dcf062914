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

let server: https.Server;
let api: ApiClient;

before(async () => {
  const portal = await generateCertificate('Reef Portal');
  server = https.createServer({ cert: portal.certPem, key: portal.keyPem }, (req, res) => {
    const answer = ANSWERS[req.url ?? ''] ?? { status: 500, body: '' };
    res.writeHead(answer.status, { 'content-type': answer.body.startsWith('{') ? 'application/json' : 'text/html' });
    res.end(answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  api = new ApiClient({ server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, serverThumbprint: portal.thumbprint });
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

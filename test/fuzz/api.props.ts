/**
 * Hostile request bodies against a real running API server (the HTTP layer's harness:
 * HTTPS on 127.0.0.1, SQLite store, real handler and task engine). Whatever the body, media type, length
 * or key: a 2xx or a 4xx the API documents, a JSON error body, never a 500, and the
 * server keeps serving.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import tls from 'node:tls';
import fc from 'fast-check';
import { startHarness, thumbprint, type Harness, type RawResponse } from '../server/http/harness.js';
import { withTimeout } from './util.js';

const ALLOWED = new Set([200, 201, 400, 401, 404, 409, 413, 415, 422]);
export const API_LIMITS = { maxJsonBytes: 16 * 1024, maxUploadBytes: 8 * 1024, authFailuresPerMinute: 1_000_000_000, requestsPerMinutePerActor: 1_000_000_000, requestsPerMinutePerAddress: 1_000_000_000 };

export async function startApiTarget(): Promise<Harness> {
  const h = await startHarness(API_LIMITS);
  // Something for valid requests to find: an environment, a pool, a machine, a file.
  await h.raw('POST', '/api/machines', {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'web-01', kind: 'target', thumbprint: thumbprint(), commsStyle: 'polling', environments: ['Production'], roles: ['web'] }),
  });
  await h.raw('POST', '/api/files', { headers: { 'content-type': 'application/octet-stream' }, body: 'hello' });
  return h;
}

const HELLO_SHA = createHash('sha256').update('hello').digest('hex');

const nameArb = fc.oneof(
  fc.constantFrom('Production', 'web', 'web-01', 'Builders', 'Default Worker Pool', 'production', ' web-01 '),
  fc.string({ maxLength: 20 }),
  fc.string({ minLength: 190, maxLength: 260 }),
  fc.constantFrom('', ' ', 'a\u0000b', 'tab\there', '\u007f', '💥', 'x'.repeat(201)),
);
const junkArb = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(null, -1, 0, 1.5, 1e308, '', [], {}, true));
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: arb }, { weight: 1, arbitrary: junkArb });

const targetArb = maybe(
  fc.oneof(
    fc.record({ environment: nameArb, role: nameArb }, { requiredKeys: ['environment'] }),
    fc.record({ workerPool: nameArb }),
    fc.record({ machines: fc.array(nameArb, { maxLength: 4 }) }),
    fc.record({ environment: nameArb, workerPool: nameArb }),
  ),
);

const taskArb = fc.record(
  {
    kind: maybe(fc.constantFrom('run-script', 'push-file', 'health-check', 'deploy')),
    target: targetArb,
    script: maybe(fc.record({ syntax: maybe(fc.constantFrom('bash', 'sh', 'powershell', 'cmd')), body: maybe(fc.string({ maxLength: 40 })) }, { requiredKeys: [] })),
    file: maybe(
      fc.record(
        {
          sha256: maybe(fc.oneof(fc.constant(HELLO_SHA), fc.stringMatching(/^[0-9a-f]{64}$/), fc.stringMatching(/^[0-9A-F]{64}$/), fc.string())),
          destination: maybe(fc.oneof(fc.constantFrom('/opt/app/x', 'C:\\app\\x', 'relative', '', '/'), fc.string())),
        },
        { requiredKeys: [] },
      ),
    ),
    timeoutSeconds: maybe(fc.oneof(fc.integer({ min: -5, max: 700_000 }), fc.double())),
    extra: junkArb,
  },
  { requiredKeys: [] },
);

/** Requests that pass the schema, so the store and engine see them: 201, 404 or 422. */
const someName = fc.constantFrom('Production', 'production', 'Staging', 'web', 'db', 'web-01', 'web-02', 'Builders');
const validTaskArb = fc.oneof(
  fc.record({ kind: fc.constant('run-script'), target: fc.record({ environment: someName, role: someName }, { requiredKeys: ['environment'] }), script: fc.record({ body: fc.string({ minLength: 1, maxLength: 20 }) }) }),
  fc.record({ kind: fc.constant('push-file'), target: fc.record({ machines: fc.array(someName, { minLength: 1, maxLength: 2 }) }), file: fc.record({ sha256: fc.constantFrom(HELLO_SHA, '0'.repeat(64)), destination: fc.constant('/opt/app/x') }) }),
  fc.record({ kind: fc.constant('health-check'), target: fc.record({ workerPool: someName }) }),
);
const validMachineArb = fc.record(
  {
    name: someName,
    kind: fc.constantFrom('target', 'worker'),
    thumbprint: fc.constantFrom('A'.repeat(64), 'b'.repeat(64), 'cc:'.repeat(31) + 'cc'),
    commsStyle: fc.constant('polling'),
    environments: fc.array(someName, { maxLength: 2 }),
    roles: fc.array(someName, { maxLength: 2 }),
    force: fc.boolean(),
  },
  { requiredKeys: ['name', 'kind', 'thumbprint', 'commsStyle'] },
);

const machineArb = fc.record(
  {
    name: maybe(nameArb),
    kind: maybe(fc.constantFrom('target', 'worker')),
    thumbprint: maybe(
      fc.oneof(
        fc.constant(null).map(() => thumbprint()),
        fc.stringMatching(/^[0-9a-fA-F]{64}$/),
        fc.stringMatching(/^([0-9a-f]{2}:){31}[0-9a-f]{2}$/),
        fc.string({ maxLength: 70 }),
      ),
    ),
    commsStyle: maybe(fc.constantFrom('polling', 'listening')),
    endpoint: maybe(fc.record({ host: maybe(fc.string({ maxLength: 300 })), port: maybe(fc.integer({ min: -1, max: 70000 })) }, { requiredKeys: [] })),
    environments: maybe(fc.array(nameArb, { maxLength: 3 })),
    roles: maybe(fc.array(nameArb, { maxLength: 3 })),
    workerPools: maybe(fc.array(nameArb, { maxLength: 3 })),
    tentacleVersion: maybe(fc.string({ maxLength: 120 })),
    force: maybe(fc.boolean()),
  },
  { requiredKeys: [] },
);

const otherMediaTypeArb = fc.option(
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'application/json; charset="UTF-8"',
    'application/json; charset=latin1',
    'APPLICATION/JSON',
    'application/octet-stream',
    'text/plain',
    'multipart/form-data; boundary=x',
    'application/x-www-form-urlencoded',
  ),
  { nil: undefined },
);
const mediaTypeArb = fc.oneof({ weight: 3, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: otherMediaTypeArb });

const authArb = fc.oneof({ weight: 8, arbitrary: fc.constantFrom('admin', 'bearer') }, { weight: 1, arbitrary: fc.constantFrom('none', 'wrong', 'malformed') });

function bodyArb(shaped: fc.Arbitrary<unknown>): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 4, arbitrary: shaped.map((v) => Buffer.from(JSON.stringify(v))) },
    { weight: 1, arbitrary: fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v))) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) },
    // Valid JSON cut short.
    { weight: 1, arbitrary: fc.tuple(shaped, fc.nat()).map(([v, cut]) => { const b = Buffer.from(JSON.stringify(v)); return b.subarray(0, cut % (b.length + 1)); }) },
    // Over the JSON limit (16 KiB) and the upload limit (8 KiB).
    { weight: 1, arbitrary: fc.integer({ min: 8 * 1024 + 1, max: 40 * 1024 }).map((n) => Buffer.from(JSON.stringify({ name: 'x'.repeat(n) }))) },
    { weight: 1, arbitrary: fc.constantFrom('', '{', 'null', '[]', '""', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}', '\ufeff{}').map((s) => Buffer.from(s)) },
  );
}

interface Attempt {
  path: '/api/tasks' | '/api/machines' | '/api/files';
  mediaType: string | undefined;
  auth: string;
  body: Buffer;
  sha256Header?: string;
}

const attemptArb: fc.Arbitrary<Attempt> = fc.oneof(
  fc.record({ path: fc.constant('/api/tasks' as const), mediaType: mediaTypeArb, auth: authArb, body: bodyArb(fc.oneof(taskArb, validTaskArb)) }),
  fc.record({ path: fc.constant('/api/machines' as const), mediaType: mediaTypeArb, auth: authArb, body: bodyArb(fc.oneof(machineArb, validMachineArb)) }),
  fc.record(
    {
      path: fc.constant('/api/files' as const),
      mediaType: fc.oneof({ weight: 3, arbitrary: fc.constant('application/octet-stream') }, { weight: 1, arbitrary: otherMediaTypeArb }),
      auth: authArb,
      body: fc.oneof(fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)), fc.integer({ min: 8 * 1024 + 1, max: 20 * 1024 }).map((n) => Buffer.alloc(n, 7))),
      sha256Header: fc.oneof(fc.constant(undefined), fc.constant('match'), fc.stringMatching(/^[0-9a-f]{64}$/), fc.string({ maxLength: 70 }).filter((s) => /^[\x20-\x7e]*$/.test(s))),
    },
    { requiredKeys: ['path', 'mediaType', 'auth', 'body'] },
  ),
);

async function send(h: Harness, a: Attempt): Promise<RawResponse> {
  const headers: Record<string, string> = {};
  if (a.mediaType !== undefined) headers['content-type'] = a.mediaType;
  if (a.auth === 'bearer') headers.authorization = `Bearer ${h.adminKey}`;
  if (a.auth === 'wrong') headers['x-reef-apikey'] = 'API-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
  if (a.auth === 'malformed') headers['x-reef-apikey'] = 'not a key';
  if (a.sha256Header !== undefined) headers['x-reef-sha256'] = a.sha256Header === 'match' ? createHash('sha256').update(a.body).digest('hex') : a.sha256Header;
  return h.raw('POST', a.path, { headers, body: a.body, auth: a.auth !== 'none' });
}

/** POST /api/tasks, /api/machines, /api/files with hostile bodies: documented statuses only; the server keeps serving. */
export async function apiHostileBodies(h: Harness, runs: number): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(attemptArb, async (a) => {
      const r = await withTimeout(send(h, a), 10_000, `POST ${a.path}`);
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      assert.ok(ALLOWED.has(r.status), `POST ${a.path} answered ${r.status}: ${r.text.slice(0, 300)}`);
      if (r.status >= 400) {
        assert.equal(typeof r.json?.error?.code, 'string', `error body: ${r.text.slice(0, 200)}`);
        assert.ok(r.json.error.message.length > 0);
        if (a.auth === 'none' || a.auth === 'wrong' || a.auth === 'malformed') assert.equal(r.status, 401);
      }
      const ping = await withTimeout(h.raw('GET', '/api/ping', { auth: false }), 10_000, 'GET /api/ping');
      assert.equal(ping.status, 200);
    }),
    { numRuns: runs },
  );
  return statuses;
}

/**
 * Garbage that is not HTTP at all, and HTTP cut off mid-body, straight into the API's TLS
 * port: the server ends that connection and keeps serving everyone else.
 */
export async function apiGarbageConnections(h: Harness, runs: number): Promise<void> {
  const request = fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 400 }).map((b) => Buffer.from(b)),
    fc.tuple(fc.constantFrom('/api/tasks', '/api/machines', '/api/files'), fc.integer({ min: 1, max: 100_000 }), fc.uint8Array({ maxLength: 200 })).map(([path, declared, body]) =>
      Buffer.concat([
        Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\nX-Reef-ApiKey: ${h.adminKey}\r\nContent-Type: application/json\r\nContent-Length: ${declared + body.length}\r\n\r\n`),
        Buffer.from(body),
      ]),
    ),
    fc.constantFrom(
      'POST /api/tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n',
      'POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello',
      'GET /api/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n',
      `GET /api/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    ).map((s) => Buffer.from(s)),
  );
  await fc.assert(
    fc.asyncProperty(request, fc.boolean(), async (bytes, endIt) => {
      const socket = tls.connect({ host: '127.0.0.1', port: h.port, rejectUnauthorized: false });
      socket.on('error', () => {});
      await withTimeout(once(socket, 'secureConnect'), 5000, 'TLS to the API');
      socket.write(bytes);
      if (endIt) socket.end();
      socket.resume();
      await new Promise((r) => setTimeout(r, 5));
      socket.destroy();
      const ping = await withTimeout(h.raw('GET', '/api/ping', { auth: false }), 10_000, 'GET /api/ping');
      assert.equal(ping.status, 200);
    }),
    { numRuns: runs },
  );
}

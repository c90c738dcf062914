/**
 * The HTTPS port by the book, on a real server (startReefServer, port 0), with raw TLS
 * sockets and curl: HEAD on every GET route, WWW-Authenticate on every 401, over-long
 * request lines and oversized headers answered with the JSON error and the security
 * headers, and JSON bodies that are not UTF-8 refused.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { SECURITY_HEADERS } from '../../../src/server/http/respond.js';
import { API_ROUTES } from '../../../src/server/http/routes/index.js';
import { MAX_HEAD_BYTES, MAX_URL_BYTES } from '../../../src/server/https/request-head.js';
import { sessionCookie, startSession } from '../../../src/server/auth/sessions.js';
import { startReefServer, type RunningServer } from '../../../src/server/runtime.js';
import { removeTempDir, runTracked, stopAll, trackedTempDir } from '../../support/processes.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

describe('the HTTPS port by the book', () => {
  let server: RunningServer;
  let dir: string;
  let port: number;
  let apiKey: string;
  let cookie: string;
  /** Values for each route parameter, so every GET route answers 200. */
  const values: Record<string, string> = {};

  /** One request on its own connection. `headersOnly`: resolve once the headers are in (a stream that does not end). */
  const request = (method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string, headersOnly = false): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, method, path, headers, rejectUnauthorized: false, agent: false }, (res) => {
        if (headersOnly) {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.alloc(0) });
          res.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  const withKey = (extra: Record<string, string> = {}) => ({ 'x-reef-apikey': apiKey, ...extra });

  /** Writes `bytes` on a fresh TLS connection and returns all the server sent until it closed. */
  const rawExchange = (bytes: Buffer | string): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => socket.write(bytes));
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', (err) => (chunks.length ? resolve(Buffer.concat(chunks).toString('latin1')) : reject(err)));
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      socket.setTimeout(15_000, () => socket.destroy(new Error('no answer within 15 s')));
    });

  function parseRaw(text: string): { status: number; headers: Map<string, string>; json: any } {
    const [head, ...rest] = text.split('\r\n\r\n');
    const [statusLine, ...lines] = head!.split('\r\n');
    const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as [string, string]));
    return { status: Number(statusLine!.split(' ')[1]), headers, json: JSON.parse(rest.join('\r\n')) };
  }

  function assertSecurityHeaders(headers: Map<string, string> | Answer['headers']) {
    const get = (name: string) => (headers instanceof Map ? headers.get(name) : headers[name]);
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) assert.equal(get(name), value, `${name}`);
    assert.match(String(get('content-type')), /^application\/json/);
  }

  before(async () => {
    dir = await trackedTempDir('reef-standards-');
    server = await startReefServer({ dataDir: dir, httpsPort: 0, commsPort: 0, host: '127.0.0.1' });
    port = server.httpsPort;
    apiKey = server.initialAdminKey!;
    const { store, engine } = server;
    await store.createMachine({ name: 'web-1', kind: 'target', thumbprint: 'AB'.repeat(32), commsStyle: 'polling', environments: ['Production'], roles: ['web'] });
    await store.ensureWorkerPool('Pool A');
    const task = await engine.createTask({ kind: 'health-check', target: { machines: ['web-1'] } } as never);
    const uploaded = await request('POST', '/api/files', withKey({ 'content-type': 'application/octet-stream' }), 'hello');
    assert.equal(uploaded.status, 201);
    Object.assign(values, { idOrName: 'web-1', id: task.id, sha256: JSON.parse(uploaded.body.toString()).sha256 });
    // `idOrName` names a user too (GET /api/users/:idOrName).
    await store.insertUser({ username: 'web-1', passwordHash: 'not a hash: never signs in' });
    const admin = (await store.getUserCredential('admin'))!;
    const session = await startSession(store, { id: admin.id, username: admin.username, createdAt: admin.createdAt });
    cookie = sessionCookie(session.id).split(';')[0]!;
  });

  after(async () => {
    await server?.close();
    await stopAll();
    await removeTempDir(dir);
  });

  /** Every GET route of the API with its parameters filled in (groups by their own names). */
  function apiGetPaths(): string[] {
    const patterns = API_ROUTES.filter((route) => route.method === 'GET').map((route) => route.path);
    assert.ok(patterns.length >= 15, `found ${patterns.length} GET routes`);
    return patterns.map((pattern) =>
      pattern.replace(/:(\w+)/g, (_m, name: string) => {
        if (pattern.startsWith('/api/environments')) return 'Production';
        if (pattern.startsWith('/api/worker-pools')) return encodeURIComponent('Pool A');
        assert.ok(values[name], `no value for :${name} in ${pattern}`);
        return encodeURIComponent(values[name]!);
      }),
    );
  }

  /** HEAD answers as GET does, without the body. Dynamic values (Date, a fresh sign-in cookie) aside. */
  async function assertHeadLikeGet(path: string, headers: Record<string, string>) {
    // The log stream of an unfinished task streams until it ends: only its headers are compared.
    const get = await request('GET', path, headers, undefined, path.endsWith('/log/stream'));
    const head = await request('HEAD', path, headers);
    assert.equal(head.status, get.status, `HEAD ${path}`);
    assert.notEqual(get.status, 405, `GET ${path}`);
    assert.equal(head.body.length, 0, `HEAD ${path} has no body`);
    const comparable = (h: Answer['headers']) => Object.fromEntries(Object.entries(h).filter(([name]) => !['date', 'set-cookie', 'transfer-encoding', 'connection', 'keep-alive'].includes(name)));
    assert.deepEqual(comparable(head.headers), comparable(get.headers), `HEAD ${path}: the headers of GET`);
    return get;
  }

  it('answers HEAD on every GET route of the API with the headers of GET and no body', async () => {
    // The one GET that answers an error on a fresh server: no certificate rotation is under way.
    const expected = (path: string) => (path === '/api/server/certificate-rotation' ? 409 : 200);
    for (const path of apiGetPaths()) {
      const get = await assertHeadLikeGet(path, withKey());
      assert.equal(get.status, expected(path), `GET ${path}: ${get.body.toString().slice(0, 200)}`);
    }
    const stream = await request('HEAD', `/api/tasks/${values.id}/log/stream`, withKey());
    assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
    // Allow names HEAD wherever GET is allowed.
    const wrong = await request('PUT', '/api/machines', withKey());
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.allow, 'GET, HEAD, POST');
  });

  it('answers HEAD on the portal pages, its assets and the downloads as GET', async () => {
    for (const path of ['/', '/tasks', '/tasks/new', `/tasks/${values.id}`, '/machines/web-1', '/nodes', '/apikeys', '/static/common.js', '/downloads/', '/downloads/SHA256SUMS']) {
      assert.equal((await assertHeadLikeGet(path, { cookie })).status, 200, path);
    }
    // Signed out: the same redirect to the sign-in page, and the sign-in page itself.
    assert.equal((await assertHeadLikeGet('/tasks', {})).status, 303);
    assert.equal((await assertHeadLikeGet('/login', {})).status, 200);
  });

  it('names the authentication scheme on every 401 (RFC 9110 11.6.1)', async () => {
    const none = await request('GET', '/api/machines');
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="Reef"');
    const wrong = await request('GET', '/api/machines', { authorization: 'Bearer API-WRONGWRONGWRONGWRONGWRONGWRONGWR' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers['www-authenticate'], 'Bearer realm="Reef", error="invalid_token"');
    const expired = await request('GET', '/api/machines', { cookie: 'reef_session=gone' });
    assert.equal(expired.status, 401);
    assert.equal(expired.headers['www-authenticate'], 'Cookie realm="Reef", form-action="/login", cookie-name="reef_session", Bearer realm="Reef"');
    // The portal's own 401s: a form post without a session, a failed sign-in.
    const post = await request('POST', '/tasks', { 'content-type': 'application/x-www-form-urlencoded' }, 'a=b');
    assert.equal(post.status, 401);
    assert.equal(post.headers['www-authenticate'], 'Cookie realm="Reef", form-action="/login", cookie-name="reef_session"');
    const form = await request('GET', '/login');
    const loginCookie = String(form.headers['set-cookie']).split(';')[0]!;
    const token = loginCookie.split('=')[1]!;
    const failed = await request('POST', '/login', { 'content-type': 'application/x-www-form-urlencoded', cookie: loginCookie }, new URLSearchParams({ csrf: token, username: 'admin', password: 'not it' }).toString());
    assert.equal(failed.status, 401);
    assert.match(String(failed.headers['www-authenticate']), /^Cookie realm="Reef"/);
  });

  it('answers a URL over the limit with 414 and the JSON error (curl)', async () => {
    const long = `/api/machines?name=${'a'.repeat(MAX_URL_BYTES)}`;
    const curl = await runTracked('curl', ['-sk', '-D', '-', '--max-time', '20', '-H', `x-reef-apikey: ${apiKey}`, `https://127.0.0.1:${port}${long}`], { timeoutMs: 30_000 });
    assert.equal(curl.code, 0, curl.stderr);
    const answer = parseRaw(curl.stdout.replaceAll('\r\n', '\n').replace(/\n/g, '\r\n'));
    assert.equal(answer.status, 414);
    assert.equal(answer.json.error.code, 'REEF_URL_TOO_LONG');
    assert.match(answer.json.error.message, /16 KiB/);
    assertSecurityHeaders(answer.headers);
    // A URL just within the limit is served.
    const within = await request('GET', `/api/machines?name=${'a'.repeat(MAX_URL_BYTES - 100)}`, withKey());
    assert.equal(within.status, 200);
  });

  it('answers a request line past what the parser holds with the JSON error, not a bare status or nothing', async () => {
    // A request line of 100 KiB: the parser's bound (64 KiB) is hit in the middle of it.
    const answer = parseRaw(await rawExchange(`GET /api/machines?x=${'a'.repeat(100 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`));
    assert.equal(answer.status, 431);
    assert.equal(answer.json.error.code, 'REEF_HEADERS_TOO_LARGE');
    assert.match(answer.json.error.message, new RegExp(`over ${MAX_HEAD_BYTES / 1024} KiB`));
    assertSecurityHeaders(answer.headers);
    assert.equal(answer.headers.get('connection'), 'close');
  });

  it('answers oversized header fields with 431 and the JSON error, within and past the parser bound', async () => {
    const big = await request('GET', '/api/machines', withKey({ 'x-pad': 'p'.repeat(20 * 1024) }));
    assert.equal(big.status, 431);
    assert.equal(JSON.parse(big.body.toString()).error.code, 'REEF_HEADERS_TOO_LARGE');
    assertSecurityHeaders(big.headers);
    const huge = parseRaw(await rawExchange(`GET /api/machines HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(100 * 1024)}\r\n\r\n`));
    assert.equal(huge.status, 431);
    assert.equal(huge.json.error.code, 'REEF_HEADERS_TOO_LARGE');
    assertSecurityHeaders(huge.headers);
  });

  it('answers a request that is not HTTP with 400 and the JSON error', async () => {
    const answer = parseRaw(await rawExchange('GARBAGE\x01 / HTTP/1.1\r\n\r\n'));
    assert.equal(answer.status, 400);
    assert.equal(answer.json.error.code, 'REEF_BAD_HTTP');
    assertSecurityHeaders(answer.headers);
  });

  it('refuses a JSON body that is not UTF-8 with 400 and stores nothing', async () => {
    const body = Buffer.concat([Buffer.from('{"name":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
    const refused = await request('POST', '/api/environments', withKey({ 'content-type': 'application/json' }), body);
    assert.equal(refused.status, 400);
    const error = JSON.parse(refused.body.toString()).error;
    assert.equal(error.code, 'REEF_BAD_JSON');
    assert.match(error.message, /not valid UTF-8 \(at byte 12\)/);
    const list = JSON.parse((await request('GET', '/api/environments', withKey())).body.toString());
    assert.ok(!list.items.some((e: { name: string }) => e.name.startsWith('caf')), 'nothing stored');
    // The same name in UTF-8 is fine.
    const good = await request('POST', '/api/environments', withKey({ 'content-type': 'application/json' }), Buffer.from('{"name":"café"}'));
    assert.equal(good.status, 201);
  });
});

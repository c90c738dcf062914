/**
 * The portal over real HTTPS on 127.0.0.1:0, mounted in the REST API handler as the server
 * does: sign-in and its rate limit, session cookies, CSRF on the API and on sign-out, the
 * CSP and escaping of what pages show, and the static files.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { ServerInfo } from '../../src/api/contract.js';
import { CommsServer } from '../../src/comms/index.js';
import { silentLogger } from '../../src/logging.js';
import { generateCertificate } from '../../src/pki/certificate.js';
import { createApiKey } from '../../src/server/auth/apikeys.js';
import { createUser } from '../../src/server/auth/users.js';
import { createBlobStore } from '../../src/server/files/blobs.js';
import { createApiHandler } from '../../src/server/http/index.js';
import { safeNext } from '../../src/server/portal/handler.js';
import { createPortalHandler } from '../../src/server/portal/index.js';
import { PORTAL_CSP } from '../../src/server/portal/layout.js';
import { createStore, type Store } from '../../src/server/store/index.js';
import type { TaskEngine } from '../../src/server/tasks/engine.js';
import { startTaskEngine } from '../server/http/harness.js';
import { removeTempDir, trackedTempDir } from '../support/processes.js';

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

const PASSWORD = 'a long and correct password';

describe('portal over HTTPS', () => {
  let dir: string;
  let store: Store;
  let comms: CommsServer;
  let engine: TaskEngine;
  let server: https.Server;
  let port: number;
  let apiKey: string;
  const agent = new https.Agent({ rejectUnauthorized: false, keepAlive: false });

  function request(method: string, path: string, options: { headers?: Record<string, string>; body?: string } = {}): Promise<Res> {
    return new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, method, path, headers: options.headers ?? {}, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(options.body);
    });
  }

  const cookieValue = (res: Res, name: string) =>
    ([res.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith(`${name}=`)) ?? '').split(';')[0]!.slice(name.length + 1) || undefined;

  /** GET /login, then POST the form with its double-submit token. */
  async function signIn(username: string, password: string, next = '/'): Promise<Res> {
    const form = await request('GET', '/login');
    const token = cookieValue(form, 'reef_login')!;
    assert.match(form.text, new RegExp(`name="csrf" value="${token}"`));
    return request('POST', '/login', {
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `reef_login=${token}` },
      body: new URLSearchParams({ csrf: token, username, password, next }).toString(),
    });
  }

  async function session(): Promise<{ cookie: string; csrf: string }> {
    const res = await signIn('operator', PASSWORD);
    const cookie = `reef_session=${cookieValue(res, 'reef_session')}`;
    const page = await request('GET', '/', { headers: { cookie } });
    const csrf = /<meta name="reef-csrf" content="([^"]+)">/.exec(page.text)![1]!;
    return { cookie, csrf };
  }

  before(async () => {
    dir = await trackedTempDir('reef-portal-http-');
    store = await createStore(join(dir, 'reef.db'));
    const identity = await generateCertificate('reef-portal-test');
    comms = new CommsServer({ identity, trust: () => false });
    const info: ServerInfo = { product: 'Reef', version: '0.0.0-test', nodeName: 'node-<1>', commsThumbprint: identity.thumbprint, commsPort: 10943 };
    const blobs = createBlobStore(join(dir, 'files'));
    engine = await startTaskEngine(store, comms, blobs);
    const portal = createPortalHandler({ store, comms, info, logger: silentLogger, nodes: () => engine.nodes(), links: () => engine.links(), options: { signInFailuresPerMinute: 3 } });
    const handler = createApiHandler({ store, engine, comms, blobs, info, logger: silentLogger, portal });
    server = https.createServer({ cert: identity.certPem, key: identity.keyPem }, handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    apiKey = (await createApiKey(store, 'admin')).key;
    await createUser(store, 'operator', PASSWORD);
    await store.createMachine({ name: '<img src=x onerror=alert(1)>', kind: 'target', thumbprint: 'AB'.repeat(32), commsStyle: 'polling', environments: ['Prod"s'], roles: ['<b>web</b>'] });
  });

  after(async () => {
    server.close();
    server.closeAllConnections();
    await engine.close();
    await comms.close();
    await store.close();
    await removeTempDir(dir);
  });

  test('each role gets the pages it may and a 403 page naming the refusal for the rest; the menu offers only the former', async () => {
    const pages = ['/', '/tasks', '/tasks/new', '/nodes', '/apikeys', '/users', '/account'];
    const allowed: Record<string, string[]> = {
      admin: pages,
      operator: ['/', '/tasks', '/tasks/new', '/nodes', '/account'],
      viewer: ['/', '/tasks', '/nodes', '/account'],
      registrar: ['/', '/account'],
    };
    for (const [role, may] of Object.entries(allowed)) {
      await createUser(store, `${role}-user`, PASSWORD, { role: role as 'admin', scope: { environments: [], workerPools: [] } });
      const cookie = `reef_session=${cookieValue(await signIn(`${role}-user`, PASSWORD), 'reef_session')}`;
      for (const path of pages) {
        const page = await request('GET', path, { headers: { cookie } });
        if (may.includes(path)) {
          assert.equal(page.status, 200, `${role} ${path}`);
        } else {
          assert.equal(page.status, 403, `${role} ${path}`);
          assert.match(page.text, new RegExp(`User &quot;${role}-user&quot; \\(role ${role}\\) may not `));
        }
        const menu = /<nav class="nav"[\s\S]*?<\/ul>/.exec(page.text)![0];
        for (const other of pages.filter((p) => p !== '/' && p !== '/account')) {
          assert.equal(menu.includes(`href="${other}"`), may.includes(other), `${role}'s menu and ${other}`);
        }
      }
    }
  });

  test('pages need a session: a visitor is sent to sign in, with the strict CSP on every answer', async () => {
    const res = await request('GET', '/tasks?state=Failed');
    assert.equal(res.status, 303);
    assert.equal(res.headers.location, '/login?next=%2Ftasks%3Fstate%3DFailed');
    assert.equal(res.headers['content-security-policy'], PORTAL_CSP);
    assert.equal(PORTAL_CSP, "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    assert.equal(res.headers['x-frame-options'], 'DENY');
    const login = await request('GET', '/login');
    assert.equal(login.status, 200);
    assert.match(String(login.headers['set-cookie']), /^reef_login=[A-Za-z0-9_-]{43}; HttpOnly; Secure; SameSite=Strict; Path=\/login/);
    assert.doesNotMatch(login.text, /<script(?![^>]*\ssrc=)/, 'no inline scripts');
    assert.doesNotMatch(login.text, /\sstyle=|<style/, 'no inline styles');
  });

  test('sign-in: a wrong password is refused, a right one starts a session and goes to next', async () => {
    const wrong = await signIn('operator', 'wrong password');
    assert.equal(wrong.status, 401);
    assert.match(wrong.text, /Sign-in failed: the username or password is not right/);
    assert.equal(cookieValue(wrong, 'reef_session'), undefined);

    const noToken = await request('POST', '/login', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `username=operator&password=${encodeURIComponent(PASSWORD)}` });
    assert.equal(noToken.status, 403, 'a sign-in form from elsewhere (no double-submit token) is refused');

    const right = await signIn('OPERATOR', PASSWORD, '/tasks');
    assert.equal(right.status, 303);
    assert.equal(right.headers.location, '/tasks');
    const cookie = [right.headers['set-cookie']].flat().find((c) => c?.startsWith('reef_session='))!;
    assert.match(cookie, /^reef_session=[A-Za-z0-9_-]{43}; HttpOnly; Secure; SameSite=Strict; Path=\/; Max-Age=43200$/);
    assert.equal((await signIn('operator', PASSWORD, '//evil.example/')).headers.location, '/', 'no open redirect');
  });

  test('the API accepts a session cookie, with the CSRF token on every change; API keys keep working', async () => {
    const { cookie, csrf } = await session();
    assert.equal((await request('GET', '/api/machines', { headers: { cookie } })).status, 200);

    const body = JSON.stringify({ name: 'from-the-portal' });
    const json = { 'content-type': 'application/json', cookie };
    const missing = await request('POST', '/api/apikeys', { headers: json, body });
    assert.equal(missing.status, 403);
    assert.equal(JSON.parse(missing.text).error.code, 'REEF_CSRF_REJECTED');
    const wrong = await request('POST', '/api/apikeys', { headers: { ...json, 'x-reef-csrf': 'A'.repeat(43) }, body });
    assert.equal(wrong.status, 403);
    const right = await request('POST', '/api/apikeys', { headers: { ...json, 'x-reef-csrf': csrf }, body });
    assert.equal(right.status, 201);

    const bogus = await request('GET', '/api/machines', { headers: { cookie: 'reef_session=' + 'B'.repeat(43) } });
    assert.equal(bogus.status, 401);
    assert.equal(JSON.parse(bogus.text).error.code, 'REEF_SESSION_EXPIRED');
    assert.equal((await request('GET', '/api/machines', { headers: { 'x-reef-apikey': apiKey } })).status, 200);
    assert.equal((await request('GET', '/api/machines', { headers: { 'x-reef-apikey': apiKey, cookie: 'reef_session=' + 'B'.repeat(43) } })).status, 200, 'a key wins over a cookie');
  });

  test('sign-out needs the CSRF token and ends the session', async () => {
    const { cookie, csrf } = await session();
    const form = { 'content-type': 'application/x-www-form-urlencoded', cookie };
    assert.equal((await request('POST', '/logout', { headers: form, body: 'csrf=' + 'C'.repeat(43) })).status, 403);
    assert.equal((await request('GET', '/api/machines', { headers: { cookie } })).status, 200, 'still signed in');
    const out = await request('POST', '/logout', { headers: form, body: `csrf=${csrf}` });
    assert.equal(out.status, 303);
    assert.equal(out.headers.location, '/login?signedOut=1');
    assert.match(String(out.headers['set-cookie']), /reef_session=;.*Max-Age=0/);
    assert.equal((await request('GET', '/api/machines', { headers: { cookie } })).status, 401);
    assert.equal((await request('GET', '/', { headers: { cookie } })).status, 303);
  });

  test('pages escape what the store holds and carry no inline script or style', async () => {
    const { cookie } = await session();
    for (const path of ['/', '/tasks', '/tasks/new', '/nodes', '/apikeys', '/audit', `/machines/${encodeURIComponent('<img src=x onerror=alert(1)>')}`]) {
      const page = await request('GET', path, { headers: { cookie } });
      assert.equal(page.status, 200, path);
      assert.equal(page.headers['content-security-policy'], PORTAL_CSP);
      assert.doesNotMatch(page.text, /<img src=x|<b>web|node-<1>/, `${path} shows stored text as text`);
      assert.doesNotMatch(page.text, /<script(?![^>]*\ssrc=)/, `${path} has no inline script`);
      const attributeNames = (page.text.match(/<[a-z][^>]*>/gi) ?? []).map((tag) => tag.replace(/"[^"]*"/g, '""')).join(' ');
      assert.doesNotMatch(attributeNames, /\sstyle=|\son[a-z]+=/i, `${path} has no inline style or event handler`);
      assert.doesNotMatch(page.text, /<style/, `${path} has no style element`);
    }
    const dashboard = await request('GET', '/', { headers: { cookie } });
    assert.match(dashboard.text, /&lt;img src=x onerror=alert\(1\)&gt;/);
    assert.match(dashboard.text, /Prod&quot;s/);
    assert.equal((await request('GET', '/machines/nope', { headers: { cookie } })).status, 404);
    assert.equal((await request('GET', '/no/such/page', { headers: { cookie } })).status, 404);
  });

  test('static files: only named assets from web/', async () => {
    const js = await request('GET', '/static/common.js');
    assert.equal(js.status, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal((await request('GET', '/static/portal.css')).headers['content-type'], 'text/css; charset=utf-8');
    for (const path of ['/static/%2e%2e%2fpackage.json', '/static/nope.js', '/static/.hidden.js', '/static/']) {
      assert.equal((await request('GET', path)).status, 404, path);
    }
    // Dot segments are resolved before routing: this is /package.json, a page that needs a session.
    const dots = await request('GET', '/static/../package.json');
    assert.equal(dots.status, 303);
    assert.doesNotMatch(dots.text, /"name"/);
  });

  test('safeNext keeps only paths on this site', () => {
    assert.equal(safeNext('/tasks?state=Failed'), '/tasks?state=Failed');
    for (const bad of [null, '', 'https://evil.example/', '//evil.example', '/\\evil.example', '/login', '/x\ny']) assert.equal(safeNext(bad), '/');
  });

  test('failed sign-ins are rate limited per address', async () => {
    let last: Res | undefined;
    for (let i = 0; i < 4; i++) last = await signIn('operator', 'wrong again');
    assert.equal(last!.status, 429);
    assert.match(last!.text, /Too many failed sign-ins from this address/);
    assert.ok(Number(last!.headers['retry-after']) > 0);
    assert.equal((await signIn('operator', PASSWORD)).status, 429, 'even the right password waits');
  });
});

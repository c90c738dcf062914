/**
 * The audit log and the request budgets on one real server behind a real HAProxy, which
 * sends a PROXY protocol v2 header (`--proxy-protocol`): clients connect from different
 * loopback addresses (127.0.0.2, 127.0.0.3...), and HAProxy announces each, so every event
 * must carry the client's address, never HAProxy's; and two clients behind the one proxy
 * must have budgets of their own.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AUDIT_KIND_NAMES } from '../../../src/server/audit/kinds.js';
import { createApiKeyOffline, startReefServer, type RunningServer } from '../../../src/server/runtime.js';
import type { AuditEvent } from '../../../src/server/store/types.js';
import { REEF_BIN } from '../../support/built.js';
import { rawRequest, type RawResponse } from '../http/harness.js';
import { startHaproxy } from '../../support/haproxy.js';
import { removeTempDir, runTracked, trackedTempDir } from '../../support/processes.js';
import { createTestCa, type TestCa } from '../../support/test-ca.js';
import type { Daemon } from '../../support/tinyproxy.js';

const REPO = join(import.meta.dirname, '..', '..', '..');
const LIMITS = { authFailuresPerMinute: 3, requestsPerMinutePerAddress: 5, requestsPerMinutePerActor: 100 };

describe('audit log and request budgets behind HAProxy (send-proxy-v2)', () => {
  let dir: string;
  let server: RunningServer;
  let haproxy: Daemon;
  let ca: TestCa;
  let certFile: string;
  let adminKey: string;

  /** One request through HAProxy from the loopback address `from`, with the admin key unless `key` says otherwise. */
  function request(from: string, method: string, path: string, options: { headers?: Record<string, string>; body?: string | Buffer; key?: string | null } = {}): Promise<RawResponse> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.key) headers['x-reef-apikey'] = options.key;
    if (typeof options.body === 'string' && !headers['content-type']) headers['content-type'] = 'application/json';
    return rawRequest(haproxy.port, adminKey, method, path, { headers, body: options.body, auth: options.key !== null, localAddress: from });
  }

  async function latest(kind: string): Promise<AuditEvent> {
    const [event] = await server.store.listAuditEvents({ kind, limit: 1 });
    assert.ok(event, `a ${kind} event was recorded`);
    return event;
  }

  const cookieOf = (res: RawResponse, name: string) =>
    ([res.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith(`${name}=`)) ?? '').split(';')[0]!.slice(name.length + 1);

  async function signIn(from: string, username: string, password: string): Promise<RawResponse> {
    const form = await request(from, 'GET', '/login', { key: null });
    const token = cookieOf(form, 'reef_login');
    return request(from, 'POST', '/login', {
      key: null,
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `reef_login=${token}` },
      body: new URLSearchParams({ csrf: token, username, password, next: '/' }).toString(),
    });
  }

  before(async () => {
    dir = await trackedTempDir('reef-audit-');
    ca = await createTestCa();
    certFile = join(dir, 'portal.pem');
    const first = await ca.issue({ ip: ['127.0.0.1'] });
    await writeFile(certFile, first.certPem + ca.intermediatePem + first.keyPem);
    server = await startReefServer({
      dataDir: dir,
      httpsPort: 0,
      commsPort: 0,
      host: '127.0.0.1',
      nodeName: 'audit-node',
      proxyProtocol: true,
      apiLimits: LIMITS,
      httpsCertificate: { file: certFile },
      // Reloaded when the test says so, not by the file watch.
      httpsCertificateWatchIntervalMs: 3_600_000,
    });
    adminKey = server.initialAdminKey!;
    haproxy = await startHaproxy({
      config: ({ ports }) => `frontend reef_443
  bind 127.0.0.1:${ports[0]}
  default_backend reef_https

backend reef_https
  server reef 127.0.0.1:${server.httpsPort} send-proxy-v2
`,
    });
  });

  after(async () => {
    await haproxy?.stop();
    await server?.close();
    if (dir) await removeTempDir(dir);
  });

  test('the first start and an offline key are recorded as the server, from no address', async () => {
    const key = await latest('apikey.created');
    assert.deepEqual([key.actor, key.address, key.node, key.target?.name], [{ kind: 'system', id: null, name: 'first start' }, null, 'audit-node', 'admin']);
    const admin = await latest('user.created');
    assert.deepEqual([admin.actor.name, admin.target?.name, admin.address], ['first start', 'admin', null]);
    const offline = await createApiKeyOffline(dir, 'break-glass');
    const made = await latest('apikey.created');
    assert.deepEqual([made.actor, made.target, made.address], [{ kind: 'system', id: null, name: 'reef apikey create --data' }, { kind: 'api-key', id: offline.id, name: 'break-glass' }, null]);
  });

  test('portal sign-ins, failed sign-ins and sign-outs carry the user and the address HAProxy announced', async () => {
    assert.equal((await signIn('127.0.0.3', 'Admin', 'not the password')).status, 401);
    const failed = await latest('user.sign-in-failed');
    assert.deepEqual([failed.actor, failed.address], [{ kind: 'user', id: null, name: 'Admin' }, '127.0.0.3']);
    const signedIn = await signIn('127.0.0.3', 'admin', server.initialAdminPassword!);
    assert.equal(signedIn.status, 303);
    const event = await latest('user.signed-in');
    assert.deepEqual([event.actor.kind, event.actor.name, event.address], ['user', 'admin', '127.0.0.3']);
    assert.match(event.actor.id!, /^user-/);

    // The session reads the log (API and page), then signs out.
    const cookie = `reef_session=${cookieOf(signedIn, 'reef_session')}`;
    const api = await request('127.0.0.3', 'GET', '/api/audit?kind=user', { key: null, headers: { cookie } });
    assert.deepEqual(api.json.items.slice(0, 2).map((e: AuditEvent) => e.kind), ['user.signed-in', 'user.sign-in-failed']);
    const page = await request('127.0.0.3', 'GET', '/audit?kind=user', { key: null, headers: { cookie } });
    assert.equal(page.status, 200);
    assert.match(page.text, /<code>user\.sign-in-failed<\/code>/);
    assert.match(page.text, /127\.0\.0\.3/);
    const bad = await request('127.0.0.3', 'GET', '/audit?kind=user.exploded', { key: null, headers: { cookie } });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /neither an audit event kind nor a family/);
    const csrf = /<meta name="reef-csrf" content="([^"]+)">/.exec(page.text)![1]!;
    const out = await request('127.0.0.3', 'POST', '/logout', { key: null, headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: `csrf=${csrf}` });
    assert.equal(out.status, 303);
    assert.deepEqual([(await latest('user.signed-out')).actor.name, (await latest('user.signed-out')).address], ['admin', '127.0.0.3']);
  });

  test('keys, machines and their trust, groups, files and tasks: each change carries its key and address', async () => {
    const from = '127.0.0.2';
    const admin = (await server.store.listApiKeys()).find((k) => k.name === 'admin')!;
    const byAdmin = { kind: 'api-key', id: admin.id, name: 'admin' };
    const check = async (kind: string, target: { kind: string; id?: string; name?: string | null }, details?: Record<string, unknown>) => {
      const event = await latest(kind);
      assert.deepEqual(event.actor, byAdmin, kind);
      assert.equal(event.address, from, kind);
      assert.equal(event.target?.kind, target.kind, kind);
      if (target.id !== undefined) assert.equal(event.target?.id, target.id, kind);
      if (target.name !== undefined) assert.equal(event.target?.name, target.name, kind);
      for (const [field, value] of Object.entries(details ?? {})) assert.deepEqual(event.details?.[field], value, `${kind} ${field}`);
      return event;
    };

    const created = await request(from, 'POST', '/api/apikeys', { body: JSON.stringify({ name: 'ci' }) });
    assert.equal(created.status, 201);
    await check('apikey.created', { kind: 'api-key', id: created.json.id, name: 'ci' }, { prefix: created.json.key.slice(4, 12) });
    assert.doesNotMatch(JSON.stringify(await server.store.listAuditEvents()), new RegExp(created.json.key), 'no event holds a key');
    assert.equal((await request(from, 'DELETE', `/api/apikeys/${created.json.id}`)).status, 204);
    await check('apikey.revoked', { kind: 'api-key', id: created.json.id, name: 'ci' });

    const thumbprint = (n: number) => n.toString(16).toUpperCase().padStart(64, '0');
    const registration = { name: 'web-01', kind: 'target', thumbprint: thumbprint(1), commsStyle: 'polling', environments: ['Audit'], roles: ['web'] };
    const registered = await request(from, 'POST', '/api/machines', { body: JSON.stringify(registration) });
    assert.equal(registered.status, 201);
    const machine = registered.json.machine;
    await check('machine.registered', { kind: 'machine', id: machine.id, name: 'web-01' }, { thumbprint: thumbprint(1), environments: ['Audit'], roles: ['web'], created: true });
    assert.equal((await request(from, 'POST', '/api/machines', { body: JSON.stringify({ ...registration, thumbprint: thumbprint(2), force: true }) })).status, 200);
    await check('machine.trust-changed', { kind: 'machine', id: machine.id }, { from: thumbprint(1), to: thumbprint(2) });

    const task = await request(from, 'POST', '/api/tasks', { body: JSON.stringify({ kind: 'health-check', target: { machines: ['web-01'] } }) });
    assert.equal(task.status, 201);
    await check('task.created', { kind: 'task', id: task.json.id }, { kind: 'health-check', machines: 1 });
    assert.equal((await request(from, 'POST', `/api/tasks/${task.json.id}/cancel`)).status, 202);
    await check('task.cancelled', { kind: 'task', id: task.json.id });

    assert.equal((await request(from, 'POST', '/api/worker-pools', { body: JSON.stringify({ name: 'Builders' }) })).status, 201);
    await check('worker-pool.created', { kind: 'worker-pool', name: 'Builders' });
    assert.equal((await request(from, 'DELETE', '/api/worker-pools/builders')).status, 204);
    await check('worker-pool.deleted', { kind: 'worker-pool', name: 'Builders' });

    const bytes = Buffer.from('audited bytes\n');
    const upload = await request(from, 'POST', '/api/files', { body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(upload.status, 201);
    await check('file.uploaded', { kind: 'file', id: upload.json.sha256 }, { size: bytes.length });

    assert.equal((await request(from, 'DELETE', `/api/files/${upload.json.sha256}`)).status, 204);
    await check('file.deleted', { kind: 'file', id: upload.json.sha256 });
    assert.equal((await request(from, 'POST', '/api/environments', { body: JSON.stringify({ name: 'Staging' }) })).status, 201);
    await check('environment.created', { kind: 'environment', name: 'Staging' });
    assert.equal((await request(from, 'DELETE', '/api/environments/STAGING')).status, 204);
    await check('environment.deleted', { kind: 'environment', name: 'Staging' });

    assert.equal((await request(from, 'DELETE', `/api/machines/${machine.id}`)).status, 204);
    await check('machine.deregistered', { kind: 'machine', id: machine.id, name: 'web-01' }, { thumbprint: thumbprint(2) });
  });

  test('join tokens: created, used (the token is the actor of the registration), refused and revoked, never the token itself', async () => {
    const made = await request('127.0.0.2', 'POST', '/api/tokens', { body: JSON.stringify({ environments: ['Stores'], roles: ['till'] }) });
    assert.equal(made.status, 201);
    const { id, token } = made.json as { id: string; token: string };
    const created = await latest('token.created');
    assert.deepEqual([created.actor.name, created.address, created.target?.id, created.details?.uses], ['admin', '127.0.0.2', id, 1]);
    const registration = { name: 'till-01', kind: 'target', thumbprint: 'C'.repeat(64), commsStyle: 'polling' };
    assert.equal((await request('127.0.0.12', 'POST', '/api/machines', { key: token, body: JSON.stringify(registration) })).status, 201);
    const used = await latest('token.used');
    const registered = await latest('machine.registered');
    for (const event of [used, registered]) assert.deepEqual([event.actor, event.address, event.target?.name], [{ kind: 'join-token', id, name: null }, '127.0.0.12', 'till-01']);
    assert.equal(used.details?.usesLeft, 0);
    const again = await request('127.0.0.12', 'POST', '/api/machines', { key: token, body: JSON.stringify({ ...registration, name: 'till-02', thumbprint: 'D'.repeat(64) }) });
    assert.equal(again.json.error.code, 'REEF_JOIN_TOKEN_USED_UP');
    const refused = await latest('token.refused');
    assert.deepEqual([refused.address, refused.details?.code], ['127.0.0.12', 'REEF_JOIN_TOKEN_USED_UP']);
    assert.equal((await request('127.0.0.12', 'GET', '/api/machines', { key: token })).status, 403);
    assert.equal((await latest('token.refused')).details?.code, 'REEF_JOIN_TOKEN_NOT_ALLOWED');
    assert.equal((await request('127.0.0.2', 'DELETE', `/api/tokens/${id}`)).status, 204);
    assert.deepEqual([(await latest('token.revoked')).target?.id, (await latest('token.revoked')).actor.name], [id, 'admin']);
    assert.doesNotMatch(JSON.stringify(await server.store.listAuditEvents({ family: 'token' })), new RegExp(token), 'no event holds the token');
  });

  test('a request with an unknown key is recorded as refused, with its public prefix only', async () => {
    const guess = `API-GUESSKEY${'A'.repeat(24)}`;
    assert.equal((await request('127.0.0.7', 'GET', '/api/machines', { key: guess })).status, 401);
    const refused = await latest('apikey.refused');
    assert.deepEqual([refused.actor, refused.address, refused.details], [{ kind: 'api-key', id: null, name: 'API-GUESSKEY…' }, '127.0.0.7', { prefix: 'GUESSKEY', method: 'GET', path: '/api/machines' }]);
    assert.equal((await request('127.0.0.7', 'GET', '/api/machines', { key: 'my secret password' })).status, 401);
    const pasted = await latest('apikey.refused');
    assert.deepEqual([pasted.actor.name, pasted.details?.prefix], [null, null], 'what is not a key is not copied');
  });

  test('a reload of the portal certificate is recorded with both thumbprints', async () => {
    const before = (await latest('apikey.created')).id;
    const second = await ca.issue({ ip: ['127.0.0.1'] });
    await writeFile(certFile, second.certPem + ca.intermediatePem + second.keyPem);
    assert.equal((await server.reloadHttpsCertificate('SIGHUP')).outcome, 'reloaded');
    let event: AuditEvent | undefined;
    for (let i = 0; i < 50 && !event; i++) {
      [event] = await server.store.listAuditEvents({ kind: 'server.https-certificate-reloaded', limit: 1 });
      if (!event) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(event && event.id > before);
    assert.deepEqual([event.actor, event.details?.to, event.address], [{ kind: 'system', id: null, name: 'HTTPS certificate reload (SIGHUP)' }, second.thumbprint, null]);
    assert.notEqual(event.details?.from, second.thumbprint);
  });

  test('GET /api/audit filters by actor, kind or family and time, and pages; `reef audit` prints it as a table and as JSON', async () => {
    const all = (await request('127.0.0.2', 'GET', '/api/audit?limit=1000')).json.items as AuditEvent[];
    assert.ok(all.length >= 15);
    assert.deepEqual(all.map((e) => e.id), [...all.map((e) => e.id)].sort((a, b) => b - a), 'newest first');
    const byCi = (await request('127.0.0.2', 'GET', '/api/audit?actor=ADMIN&kind=machine')).json.items as AuditEvent[];
    // The registration with `force` that replaced the certificate is a registration too.
    assert.deepEqual(byCi.map((e) => e.kind), ['machine.deregistered', 'machine.trust-changed', 'machine.registered', 'machine.registered']);
    const exact = (await request('127.0.0.2', 'GET', '/api/audit?kind=machine.registered&actor=admin')).json.items as AuditEvent[];
    assert.deepEqual(exact.map((e) => [e.kind, e.details?.created]), [['machine.registered', false], ['machine.registered', true]]);
    const pivot = byCi[1]!;
    const since = (await request('127.0.0.2', 'GET', `/api/audit?kind=machine&since=${encodeURIComponent(pivot.at)}`)).json.items as AuditEvent[];
    assert.ok(since.every((e) => e.at >= pivot.at) && since.some((e) => e.id === pivot.id));
    const until = (await request('127.0.0.2', 'GET', `/api/audit?kind=machine&until=${encodeURIComponent(pivot.at)}`)).json.items as AuditEvent[];
    assert.ok(until.every((e) => e.at < pivot.at));
    const [first, second] = [(await request('127.0.0.2', 'GET', '/api/audit?limit=2')).json.items, (await request('127.0.0.2', 'GET', `/api/audit?limit=2&before=${all[1]!.id}`)).json.items];
    assert.deepEqual([...first, ...second].map((e: AuditEvent) => e.id), all.slice(0, 4).map((e) => e.id));
    const bad = await request('127.0.0.2', 'GET', '/api/audit?kind=machine.exploded');
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /families are apikey, environment, file, machine/);

    const caFile = join(dir, 'ca.pem');
    await writeFile(caFile, ca.rootPem);
    const env = { ...process.env, REEF_LOG_LEVEL: 'warn', REEF_SERVER: `https://127.0.0.1:${haproxy.port}`, REEF_API_KEY: adminKey, REEF_CA_FILE: caFile };
    const table = await runTracked(process.execPath, [REEF_BIN, 'audit', '--kind', 'machine', '--actor', 'admin', '--since', '1h'], { env, timeoutMs: 60_000 });
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trim().split('\n');
    assert.match(lines[0]!, /^ID +TIME +KIND +ACTOR +TARGET +ADDRESS +NODE$/);
    assert.match(lines[1]!, /machine\.deregistered +api-key:admin +machine:web-01 +127\.0\.0\.2 +audit-node/);
    const json = await runTracked(process.execPath, [REEF_BIN, 'audit', '--actor', 'admin', '--kind', 'task.created', '--json'], { env, timeoutMs: 60_000 });
    assert.equal(json.code, 0, json.stderr);
    const printed = JSON.parse(json.stdout) as AuditEvent[];
    assert.deepEqual(printed.map((e) => [e.kind, e.address]), [['task.created', '127.0.0.2']]);
  });

  test('only administrators read it: no key, a wrong key and no session are refused', async () => {
    const none = await request('127.0.0.6', 'GET', '/api/audit', { key: null });
    assert.deepEqual([none.status, none.json.error.code], [401, 'REEF_UNAUTHENTICATED']);
    const wrong = await request('127.0.0.6', 'GET', '/api/audit', { key: `API-WRONGKEY${'B'.repeat(24)}` });
    assert.deepEqual([wrong.status, wrong.json.error.code], [401, 'REEF_BAD_API_KEY']);
    const page = await request('127.0.0.6', 'GET', '/audit', { key: null });
    assert.equal(page.status, 303);
    assert.equal(page.headers.location, '/login?next=%2Faudit');
  });

  test('behind one proxy, each client address has its own budgets, and an actor\'s budget follows its key', async () => {
    // Failed keys: three from 127.0.0.8, then it is refused even with a right key; 127.0.0.9 is not.
    for (let i = 0; i < LIMITS.authFailuresPerMinute; i++) assert.equal((await request('127.0.0.8', 'GET', '/api/machines', { key: `API-NOTAKEY${i}${'C'.repeat(25)}` })).status, 401);
    const blocked = await request('127.0.0.8', 'GET', '/api/machines');
    assert.deepEqual([blocked.status, blocked.json.error.code], [429, 'REEF_RATE_LIMITED']);
    assert.ok(Number(blocked.headers['retry-after']) >= 1);
    assert.equal((await request('127.0.0.9', 'GET', '/api/machines', { key: `API-NOTAKEY9${'C'.repeat(25)}` })).status, 401, 'another client behind the proxy still has its attempts');
    assert.equal((await request('127.0.0.9', 'GET', '/api/machines')).status, 200);

    // Requests without credentials: five a minute per address.
    for (let i = 0; i < LIMITS.requestsPerMinutePerAddress; i++) assert.equal((await request('127.0.0.4', 'GET', '/api/ping', { key: null })).status, 200);
    const tooMany = await request('127.0.0.4', 'GET', '/api/ping', { key: null });
    assert.deepEqual([tooMany.status, tooMany.json.error.code], [429, 'REEF_TOO_MANY_REQUESTS']);
    assert.match(tooMany.json.error.message, /from 127\.0\.0\.4/);
    assert.ok(Number(tooMany.headers['retry-after']) >= 1);
    assert.equal((await request('127.0.0.5', 'GET', '/api/ping', { key: null })).status, 200, 'another client behind the proxy is served');

    // With a key: its own budget, from any address; the admin key is not touched by it. The
    // bucket refills as time passes (100 a minute), so this counts answers, not time: at least
    // a burst's worth pass before the first 429, and parallel requests from another address
    // right after cannot all be served.
    const busy = (await request('127.0.0.2', 'POST', '/api/apikeys', { body: JSON.stringify({ name: 'busy-script' }) })).json.key as string;
    let served = 0;
    for (let batch = 0; batch < 30; batch++) {
      const statuses = await Promise.all(Array.from({ length: 10 }, () => request('127.0.0.10', 'GET', '/api/environments', { key: busy }).then((r) => r.status)));
      assert.deepEqual(statuses.filter((st) => st !== 200 && st !== 429), []);
      served += statuses.filter((st) => st === 200).length;
      if (statuses.includes(429)) break;
    }
    assert.ok(served >= LIMITS.requestsPerMinutePerActor && served < 300, `${served} requests served before the first 429`);
    const elsewhere = await Promise.all(Array.from({ length: 5 }, () => request('127.0.0.11', 'GET', '/api/machines', { key: busy })));
    const spent = elsewhere.find((r) => r.status === 429);
    assert.ok(spent, 'the key is out of budget from another address too');
    assert.equal(spent.json.error.code, 'REEF_TOO_MANY_REQUESTS');
    assert.match(spent.json.error.message, /API key "busy-script"/);
    assert.equal((await request('127.0.0.10', 'GET', '/api/machines')).status, 200, 'the admin key from the same address is served');
  });

  test('docs/security.md names every kind of event', async () => {
    const security = await readFile(join(REPO, 'docs', 'security.md'), 'utf8');
    for (const kind of AUDIT_KIND_NAMES) assert.ok(security.includes(`\`${kind}\``), `docs/security.md does not name ${kind}`);
  });
});

test('reef server run takes the request budgets from flags, variables and the config file, and refuses nonsense', async () => {
  const { resolveServerSettings } = await import('../../../src/cli/reef-server.js');
  const dir = await trackedTempDir('reef-budgets-');
  try {
    const config = join(dir, 'config.json');
    await writeFile(config, JSON.stringify({ apiRequestsPerMinute: 1200, anonymousRequestsPerMinute: 60 }));
    assert.deepEqual((await resolveServerSettings({ config })).apiLimits, { requestsPerMinutePerActor: 1200, requestsPerMinutePerAddress: 60 });
    const flags = await resolveServerSettings({ config, apiRequestsPerMinute: '50' });
    assert.deepEqual(flags.apiLimits, { requestsPerMinutePerActor: 50, requestsPerMinutePerAddress: 60 }, 'a flag wins over the file');
    assert.deepEqual((await resolveServerSettings({})).apiLimits, { requestsPerMinutePerActor: undefined, requestsPerMinutePerAddress: undefined }, 'the defaults apply');
    await assert.rejects(resolveServerSettings({ anonymousRequestsPerMinute: '0' }), /--anonymous-requests-per-minute must be a whole number of requests a minute from 1/);
    await writeFile(config, JSON.stringify({ apiRequestsPerMinute: 2.5 }));
    await assert.rejects(resolveServerSettings({ config }), /apiRequestsPerMinute/);
  } finally {
    await removeTempDir(dir);
  }
});

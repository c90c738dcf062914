/**
 * Roles and scopes on the REST API and its event stream, against a real HTTPS server
 * (test/server/http/harness.ts): each role allowed and refused, with the 403 body; scoped
 * keys seeing and touching only their environments; portal users disabled and reset.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { Role } from '../../../src/api/roles.js';
import { createApiKey } from '../../../src/server/auth/apikeys.js';
import { PERMISSIONS, ROLE_PERMISSIONS, ROLES, WHOLE_SERVER_PERMISSIONS, type Permission } from '../../../src/server/auth/roles.js';
import { CSRF_HEADER, hashSessionId, SESSION_COOKIE, startSession } from '../../../src/server/auth/sessions.js';
import { createUser } from '../../../src/server/auth/users.js';
import { API_ROUTES } from '../../../src/server/http/routes/index.js';
import { startHarness, thumbprint, type Harness, type RawResponse } from './harness.js';

describe('roles and scopes on the REST API', () => {
  let h: Harness;
  const keys: Record<string, string> = {};
  let testTask: string;
  let prodTask: string;

  const call = (key: string, method: string, path: string, body?: unknown): Promise<RawResponse> =>
    h.raw(method, path, {
      headers: { 'x-reef-apikey': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const register = (name: string, extra: Record<string, unknown>) => ({ name, kind: 'target', thumbprint: thumbprint(), commsStyle: 'polling', roles: ['web'], ...extra });
  const healthCheck = (target: Record<string, unknown>) => ({ kind: 'health-check', target });

  before(async () => {
    h = await startHarness();
    const { store } = h;
    for (const [name, environments] of [['test-1', ['Test']], ['prod-1', ['Production']], ['shared-1', ['Test', 'Production']]] as const) {
      assert.equal((await call(h.adminKey, 'POST', '/api/machines', register(name, { environments }))).status, 201);
    }
    const scopedTo = (environments: string[]) => ({ environments, workerPools: [] });
    for (const role of ['operator', 'viewer', 'registrar'] as const) {
      keys[role] = (await createApiKey(store, role, { role, scope: scopedTo([]) })).key;
      keys[`${role}@Test`] = (await createApiKey(store, `${role}-test`, { role, scope: scopedTo(['Test']) })).key;
    }
    keys.admin = h.adminKey;
    // Two finished tasks, one on a Test machine and one on a Production machine.
    for (const [machine, set] of [['test-1', (id: string) => (testTask = id)], ['prod-1', (id: string) => (prodTask = id)]] as const) {
      const created = await call(h.adminKey, 'POST', '/api/tasks', healthCheck({ machines: [machine] }));
      assert.equal(created.status, 201, created.text);
      set(created.json.id);
      await store.appendTaskLog(created.json.id, null, 'info', `a line of ${machine}`);
      await store.finishTask(created.json.id, { state: 'Success' });
    }
  });
  after(() => h.close());

  it('every route of API_ROUTES declares the permission it needs; only ping and the OpenAPI document are public', () => {
    for (const route of API_ROUTES) {
      assert.ok(route.public || route.permission !== null, `${route.method} ${route.path} declares no permission`);
      assert.ok(route.public || ROLE_PERMISSIONS.admin.has(route.permission as Permission), `${route.method} ${route.path}: unknown permission ${route.permission}`);
    }
    assert.deepEqual(API_ROUTES.filter((r) => r.public).map((r) => `${r.method} ${r.path}`).sort(), ['GET /api/openapi.json', 'GET /api/ping']);
  });

  it("docs/security.md's table of roles and permissions is the one the server enforces", async () => {
    const doc = await readFile(new URL('../../../docs/security.md', import.meta.url), 'utf8');
    for (const [permission, what] of Object.entries(PERMISSIONS) as [Permission, string][]) {
      const cells = ROLES.map((role) => (ROLE_PERMISSIONS[role].has(permission) ? 'yes' : 'no'));
      const row = `| \`${permission}\` | ${what} | ${cells.join(' | ')} | ${WHOLE_SERVER_PERMISSIONS.has(permission) ? 'no (whole server)' : 'yes'} |`;
      assert.ok(doc.includes(`\n${row}\n`), `docs/security.md lacks the row\n${row}`);
    }
  });

  it('each role is allowed what it may and refused the rest with 403, the attempt and the roles that would allow it', async () => {
    const matrix: Array<[string, string, unknown, Record<Role, boolean>]> = [
      ['GET', '/api', undefined, { admin: true, operator: true, viewer: true, registrar: true }],
      ['GET', '/api/machines', undefined, { admin: true, operator: true, viewer: true, registrar: false }],
      ['GET', `/api/tasks/${testTask}/log`, undefined, { admin: true, operator: true, viewer: true, registrar: false }],
      ['GET', '/api/nodes', undefined, { admin: true, operator: true, viewer: true, registrar: false }],
      ['GET', '/api/apikeys', undefined, { admin: true, operator: false, viewer: false, registrar: false }],
      ['GET', '/api/users', undefined, { admin: true, operator: false, viewer: false, registrar: false }],
      ['POST', '/api/environments', { name: 'Staging' }, { admin: true, operator: false, viewer: false, registrar: false }],
      ['POST', '/api/tasks', healthCheck({ machines: ['test-1'] }), { admin: true, operator: true, viewer: false, registrar: false }],
    ];
    for (const [method, path, body, allowed] of matrix) {
      for (const role of ['admin', 'operator', 'viewer', 'registrar'] as const) {
        const r = await call(keys[role]!, method, path, body);
        if (allowed[role]) {
          assert.ok(r.status < 300, `${role} ${method} ${path}: ${r.status} ${r.text}`);
        } else {
          assert.equal(r.status, 403, `${role} ${method} ${path}: ${r.text}`);
          assert.equal(r.json.error.code, 'REEF_FORBIDDEN');
          assert.equal(r.json.error.details.role, role);
          assert.ok(r.json.error.details.attempted.startsWith(`${method} /api`), r.json.error.details.attempted);
          assert.ok(r.json.error.details.allowedRoles.includes('admin'));
        }
      }
    }
  });

  it("refuses a viewer's and a registrar's key on task creation, with the 403 body", async () => {
    const stored = (await h.store.listTasks()).length;
    for (const role of ['viewer', 'registrar'] as const) {
      const r = await call(keys[role]!, 'POST', '/api/tasks', { kind: 'run-script', target: { machines: ['test-1'] }, script: { body: 'id' } });
      assert.equal(r.status, 403);
      assert.deepEqual(r.json.error.details, {
        attempted: 'POST /api/tasks',
        permission: 'tasks:write',
        role,
        scope: { environments: [], workerPools: [] },
        allowedRoles: ['admin', 'operator'],
        needsWholeServer: false,
      });
      assert.equal(r.json.error.message, `API key "${role}" (role ${role}) may not create and cancel tasks (POST /api/tasks). Roles that may: admin, operator.`);
    }
    assert.equal((await h.store.listTasks()).length, stored, 'nothing was stored');
  });

  it('file uploads need files:upload; deleting a file is for admins', async () => {
    const upload = (role: string) =>
      h.raw('POST', '/api/files', { headers: { 'x-reef-apikey': keys[role]!, 'content-type': 'application/octet-stream' }, body: `bytes of ${role}` });
    assert.equal((await upload('operator')).status, 201);
    const viewer = await upload('viewer');
    assert.equal(viewer.status, 403);
    assert.equal(viewer.json.error.details.permission, 'files:upload');
    const sha256 = (await upload('admin')).json.sha256;
    assert.equal((await call(keys.operator!, 'DELETE', `/api/files/${sha256}`)).status, 403);
    assert.equal((await call(keys.admin!, 'DELETE', `/api/files/${sha256}`)).status, 204);
  });

  it('the log stream (SSE) is refused to a registrar and served to a viewer', async () => {
    const refused = await call(keys.registrar!, 'GET', `/api/tasks/${testTask}/log/stream`);
    assert.equal(refused.status, 403);
    assert.equal(refused.json.error.details.attempted, 'GET /api/tasks/:id/log/stream');
    const served = await call(keys.viewer!, 'GET', `/api/tasks/${testTask}/log/stream`);
    assert.equal(served.status, 200);
    assert.match(served.headers['content-type'] as string, /^text\/event-stream/);
    assert.match(served.text, /a line of test-1/);
    assert.match(served.text, /event: end/);
  });

  it('a scoped operator sees only machines and tasks wholly inside its environments; the rest is 404', async () => {
    const key = keys['operator@Test']!;
    assert.deepEqual((await call(key, 'GET', '/api/machines')).json.items.map((m: { name: string }) => m.name), ['test-1']);
    assert.equal((await call(key, 'GET', '/api/machines/prod-1')).status, 404);
    assert.equal((await call(key, 'GET', '/api/machines/shared-1')).status, 404, 'a machine also in Production is outside Test');
    assert.equal((await call(key, 'GET', '/api/machines?environment=Production')).status, 404);
    assert.deepEqual((await call(key, 'GET', '/api/environments')).json.items.map((e: { name: string }) => e.name), ['Test']);
    assert.equal((await call(key, 'GET', '/api/environments/Production')).status, 404);
    const tasks = (await call(key, 'GET', '/api/tasks')).json.items.map((t: { id: string }) => t.id);
    assert.ok(tasks.includes(testTask) && !tasks.includes(prodTask), JSON.stringify(tasks));
    assert.equal((await call(key, 'GET', `/api/tasks/${prodTask}`)).status, 404);
    assert.equal((await call(key, 'GET', `/api/tasks/${prodTask}/log`)).status, 404);
    assert.equal((await call(key, 'GET', `/api/tasks/${prodTask}/log/stream`)).status, 404);
    assert.equal((await call(key, 'POST', `/api/tasks/${prodTask}/cancel`)).status, 404);
    assert.equal((await call(key, 'GET', `/api/tasks/${testTask}`)).status, 200);
    const whole = await call(key, 'GET', '/api/nodes');
    assert.equal(whole.status, 403);
    assert.equal(whole.json.error.details.needsWholeServer, true);
  });

  it('a scoped operator is refused, whole, a task reaching outside its environments, with a message naming what is outside', async () => {
    const key = keys['operator@Test']!;
    const before = (await h.store.listTasks()).length;
    const prod = await call(key, 'POST', '/api/tasks', healthCheck({ environment: 'Production' }));
    assert.equal(prod.status, 403);
    assert.equal(prod.json.error.code, 'REEF_OUT_OF_SCOPE');
    assert.match(prod.json.error.message, /limited to environment Test\)? may act only within environment Test: environment "Production" is outside/);
    const shared = await call(key, 'POST', '/api/tasks', healthCheck({ environment: 'Test' }));
    assert.equal(shared.status, 403);
    assert.match(shared.json.error.message, /"shared-1" of environment "Test" also belong to environments outside/);
    const mixed = await call(key, 'POST', '/api/tasks', healthCheck({ machines: ['test-1', 'prod-1', 'nowhere-1'] }));
    assert.equal(mixed.status, 403);
    assert.match(mixed.json.error.message, /machines "prod-1", "nowhere-1" are outside it or do not exist/);
    assert.equal((await h.store.listTasks()).length, before, 'nothing was stored');
    assert.equal((await call(key, 'POST', '/api/tasks', healthCheck({ machines: ['test-1'] }))).status, 201);
  });

  it('a scoped registrar registers and deregisters only inside its environments', async () => {
    const key = keys['registrar@Test']!;
    assert.equal((await call(key, 'POST', '/api/machines', register('test-2', { environments: ['Test'] }))).status, 201);
    const outside = await call(key, 'POST', '/api/machines', register('prod-2', { environments: ['Test', 'Production'] }));
    assert.equal(outside.status, 403);
    assert.equal(outside.json.error.code, 'REEF_OUT_OF_SCOPE');
    assert.match(outside.json.error.message, /"prod-2" would be registered into environments "Test", "Production"/);
    const replace = await call(key, 'POST', '/api/machines', register('prod-1', { environments: ['Test'], force: true }));
    assert.equal(replace.status, 403, 'force may not take over a machine outside the scope');
    assert.equal((await call(key, 'DELETE', '/api/machines/prod-1')).status, 404);
    assert.equal((await call(key, 'DELETE', '/api/machines/test-2')).status, 204);
    assert.equal((await call(key, 'GET', '/api/machines')).status, 403);
  });

  it('join tokens are made by admins and unscoped registrars only; a token registers whatever the role of its maker', async () => {
    const body = { environments: ['Test'], roles: ['web'] };
    const made = await call(keys.registrar!, 'POST', '/api/tokens', body);
    assert.equal(made.status, 201, made.text);
    for (const refused of ['operator', 'viewer', 'registrar@Test'] as const) {
      const answer = await call(keys[refused]!, 'POST', '/api/tokens', body);
      assert.equal(answer.status, 403, refused);
      assert.equal(answer.json.error.code, 'REEF_FORBIDDEN');
    }
    assert.equal((await call(keys.viewer!, 'GET', '/api/tokens')).status, 403);
    const registered = await call(made.json.token, 'POST', '/api/machines', register('token-test-1', {}));
    assert.equal(registered.status, 201, registered.text);
    assert.deepEqual(registered.json.machine.environments, ['Test']);
  });

  it('API keys and users are made with a role and scope; an admin cannot be scoped; a scope must exist', async () => {
    const made = await call(h.adminKey, 'POST', '/api/apikeys', { name: 'pipeline', role: 'operator', environments: ['test'] });
    assert.equal(made.status, 201);
    assert.deepEqual([made.json.role, made.json.scope], ['operator', { environments: ['Test'], workerPools: [] }]);
    const listed = (await call(h.adminKey, 'GET', '/api/apikeys')).json.items.find((k: { id: string }) => k.id === made.json.id);
    assert.deepEqual([listed.role, listed.scope.environments], ['operator', ['Test']]);
    assert.equal((await call(h.adminKey, 'POST', '/api/apikeys', { name: 'x', role: 'admin', environments: ['Test'] })).status, 400);
    assert.match((await call(h.adminKey, 'POST', '/api/users', { username: 'x', role: 'viewer', workerPools: ['Nope'] })).json.error.message, /No worker pool is named "Nope"/);
  });

  it('a disabled user is signed out at once; a reset password ends their sessions; users change their own', async () => {
    const { store } = h;
    const user = await createUser(store, 'carol', 'carols first password', { role: 'viewer', scope: { environments: [], workerPools: [] } });
    const cookieOf = async () => `${SESSION_COOKIE}=${(await startSession(store, user)).id}`;
    const asCarol = (cookie: string, method = 'GET', path = '/api/machines', extra: Record<string, string> = {}, body?: unknown) =>
      h.raw(method, path, { auth: false, headers: { cookie, ...extra, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });

    let cookie = await cookieOf();
    assert.equal((await asCarol(cookie)).status, 200);
    const refused = await asCarol(cookie, 'GET', '/api/apikeys');
    assert.equal(refused.status, 403);
    assert.match(refused.json.error.message, /^User "carol" \(role viewer\) may not list, create and revoke API keys/);
    assert.equal((await call(h.adminKey, 'POST', '/api/users/carol/disable')).json.disabledAt !== null, true);
    assert.equal((await asCarol(cookie)).status, 401);
    assert.equal((await call(h.adminKey, 'POST', '/api/users/carol/enable')).json.disabledAt, null);

    cookie = await cookieOf();
    assert.equal((await call(h.adminKey, 'POST', '/api/users/carol/access', { role: 'registrar' })).json.role, 'registrar');
    assert.equal((await asCarol(cookie)).status, 403, 'a new role holds for a session at once');
    assert.equal((await call(h.adminKey, 'POST', '/api/users/carol/access', { role: 'viewer' })).status, 200);
    assert.equal((await asCarol(cookie)).status, 200);

    const reset = await call(h.adminKey, 'POST', '/api/users/carol/password', {});
    assert.equal(reset.json.password.length, 24);
    assert.equal((await asCarol(cookie)).status, 401, 'the reset ended the session');

    cookie = await cookieOf();
    const other = await cookieOf();
    const session = (await store.getSession(hashSessionId(cookie.split('=')[1]!)))!;
    const change = await asCarol(cookie, 'POST', '/api/account/password', { [CSRF_HEADER]: session.csrfToken }, { currentPassword: reset.json.password, newPassword: 'carols own new password' });
    assert.equal(change.status, 204, change.text);
    assert.equal((await asCarol(cookie)).status, 200, 'the session that changed it stays');
    assert.equal((await asCarol(other)).status, 401, 'the other session ended');

    // Each change is in the audit log with who made it; an operator may not read it.
    const audit = await call(h.adminKey, 'GET', '/api/audit?kind=user');
    assert.equal(audit.status, 200, audit.text);
    const events = (audit.json.items as { kind: string; actor: { kind: string; name: string | null }; target: { name: string | null } }[])
      .filter((e) => e.target?.name === 'carol')
      .map((e) => `${e.kind} by ${e.actor.kind}:${e.actor.name}`)
      .reverse();
    assert.deepEqual(events, [
      'user.disabled by api-key:admin',
      'user.enabled by api-key:admin',
      'user.role-changed by api-key:admin',
      'user.role-changed by api-key:admin',
      'user.password-reset by api-key:admin',
      'user.password-changed by user:carol',
    ]);
    assert.equal((await call(keys.operator!, 'GET', '/api/audit')).status, 403);
  });
});

/**
 * Roles and users from the command line, against a real `reef server run`: scoped API keys
 * made and listed with `reef apikey`, a viewer's key refused on task creation, portal
 * users made with `reef user`, and the offline password reset for a lost admin password
 * (server stopped), then signing in with it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiClient } from '../../src/api/client.js';
import { spawnTracked } from '../support/processes.js';
import { REEF_BIN as REEF } from '../support/built.js';
import { rawRequest, type RawResponse } from '../server/http/harness.js';
import { cli, freePort, ok, startServer, stopAll, tempDir, type ServerProcess } from './harness.js';

/** `reef ...` with `input` on its stdin; its exit code and output. */
function reefWithStdin(args: string[], input: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnTracked(process.execPath, [REEF, ...args], { env: { ...process.env, REEF_LOG_LEVEL: 'warn', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin!.end(input);
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

/** Signs in through the portal's form, as a browser would; the answer to the form post. */
async function signIn(port: number, username: string, password: string): Promise<RawResponse> {
  const form = await rawRequest(port, '', 'GET', '/login', { auth: false });
  const token = /name="csrf" value="([^"]+)"/.exec(form.text)![1]!;
  const cookie = String((form.headers['set-cookie'] as string[])[0]).split(';')[0]!;
  const body = new URLSearchParams({ csrf: token, next: '/', username, password }).toString();
  return rawRequest(port, '', 'POST', '/login', { auth: false, headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body });
}

describe('reef apikey and reef user, against a real server', () => {
  let server: ServerProcess;
  let dataDir: string;
  let ports: [number, number];

  before(async () => {
    dataDir = await tempDir('roles-cli');
    ports = [await freePort(), await freePort()];
    server = await startServer({ dataDir, httpsPort: ports[0], commsPort: ports[1], name: 'roles-cli' });
    const api = new ApiClient({ server: server.url, apiKey: server.adminKey, serverThumbprint: server.thumbprint });
    await api.json('POST', '/api/environments', { body: { name: 'Test' } });
  });
  after(() => stopAll());

  test('apikey create --role operator --environment Test; apikey list shows role and scope', async () => {
    const env = server.env(server.adminKey!);
    const key = await ok('reef', ['apikey', 'create', '--name', 'pipeline', '--role', 'operator', '--environment', 'Test'], env);
    assert.match(key, /^API-[A-Z2-7]{32}$/);
    const listed = await ok('reef', ['apikey', 'list'], env);
    assert.match(listed, /^NAME\s+ID\s+ROLE\s+SCOPE/m);
    assert.match(listed, /^pipeline\s+key-\S+\s+operator\s+environment Test\s/m);
    assert.match(listed, /^admin\s+key-\S+\s+admin\s+whole server\s/m, 'the first key is an admin');
    const refused = await cli('reef', ['apikey', 'create', '--name', 'x', '--role', 'operator', '--environment', 'Narnia'], env);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /No environment is named "Narnia"/);
  });

  test("a viewer's key is refused task creation, saying which roles may", async () => {
    const viewer = await ok('reef', ['apikey', 'create', '--name', 'dashboards', '--role', 'viewer'], server.env(server.adminKey!));
    const refused = await cli('reef', ['tasks', 'health-check', '--environment', 'Test'], server.env(viewer));
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /API key "dashboards" \(role viewer\) may not create and cancel tasks \(POST \/api\/tasks\)\. Roles that may: admin, operator\./);
    const allowed = await cli('reef', ['machines', 'list'], server.env(viewer));
    assert.equal(allowed.code, 0, allowed.stderr);
  });

  test('a Tentacle registers and deregisters with a registrar key limited to Test, and is refused Production', async () => {
    const registrar = await ok('reef', ['apikey', 'create', '--name', 'installer', '--role', 'registrar', '--environment', 'Test'], server.env(server.adminKey!));
    const root = await tempDir('roles-cli-tentacle');
    const tentacle = (args: string[]) => cli('tentacle', args, { REEF_TENTACLE_ROOT: root });
    const connection = ['--server', server.url, '--server-thumbprint', server.thumbprint, '--apiKey', registrar];
    assert.equal((await tentacle(['create-instance', '--instance', 'Web'])).code, 0);
    assert.equal((await tentacle(['new-certificate', '--instance', 'Web'])).code, 0);
    const refused = await tentacle(['register-with', '--instance', 'Web', ...connection, '--server-comms-port', String(server.commsPort), '--environment', 'Production', '--role', 'web', '--name', 'web-9']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /may act only within environment Test: machine "web-9" would be registered into environments "Production"/);
    const registered = await tentacle(['register-with', '--instance', 'Web', ...connection, '--server-comms-port', String(server.commsPort), '--environment', 'Test', '--role', 'web', '--name', 'web-9']);
    assert.equal(registered.code, 0, registered.stderr);
    const listing = await cli('reef', ['machines', 'list'], server.env(registrar));
    assert.match(listing.stderr, /API key "installer" \(role registrar, limited to environment Test\) may not see machines and their health/);
    const gone = await tentacle(['deregister-from', '--instance', 'Web', ...connection]);
    assert.equal(gone.code, 0, gone.stderr);
  });

  test('user create prints a password once; user list shows the role; set-role changes it; a reset password from stdin', async () => {
    const env = server.env(server.adminKey!);
    const password = await ok('reef', ['user', 'create', '--name', 'alice', '--role', 'viewer', '--environment', 'Test'], env);
    assert.match(password, /^[A-Z2-7]{24}$/);
    assert.match(await ok('reef', ['user', 'list'], env), /^alice\s+viewer\s+environment Test\s/m);
    await ok('reef', ['user', 'set-role', '--name', 'alice', '--role', 'operator', '--environment', 'Test'], env);
    assert.match(await ok('reef', ['user', 'list'], env), /^alice\s+operator\s+environment Test\s/m);
    assert.equal((await signIn(server.httpsPort, 'alice', password)).status, 303);
    const reset = await reefWithStdin(['user', 'reset-password', '--name', 'alice', '--password-stdin'], 'alices chosen password\n', env);
    assert.equal(reset.code, 0, reset.stderr);
    assert.equal(reset.stdout, '', 'a password read from stdin is not printed back');
    assert.equal((await signIn(server.httpsPort, 'alice', 'alices chosen password')).status, 303);
    await ok('reef', ['user', 'disable', '--name', 'alice'], env);
    const disabled = await signIn(server.httpsPort, 'alice', 'alices chosen password');
    assert.equal(disabled.status, 403);
    assert.match(disabled.text, /This account is disabled/);
  });

  test('reset-password --data works offline, server stopped, for a lost admin password', async () => {
    await server.kill();
    const printed = await ok('reef', ['user', 'reset-password', '--data', dataDir, '--name', 'admin']);
    assert.match(printed, /^[A-Z2-7]{24}$/, 'the new password alone on stdout');
    const unknown = await cli('reef', ['user', 'reset-password', '--data', dataDir, '--name', 'nobody']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /No user has the id or name "nobody"/);
    server = await startServer({ dataDir, httpsPort: ports[0], commsPort: ports[1], name: 'roles-cli-again' });
    assert.equal((await signIn(server.httpsPort, 'admin', 'the-lost-password')).status, 401);
    const signedIn = await signIn(server.httpsPort, 'admin', printed);
    assert.equal(signedIn.status, 303);
    assert.match(String(signedIn.headers['set-cookie']), /reef_session=/);
    // The offline reset is in the audit log: the command, from no address.
    const adminKey = (await ok('reef', ['apikey', 'create', '--data', dataDir, '--name', 'after-reset'])).trim();
    const events = JSON.parse(await ok('reef', ['audit', '--kind', 'user.password-reset', '--json'], server.env(adminKey))) as { actor: { kind: string; name: string }; target: { name: string }; address: string | null }[];
    const offline = events.find((e) => e.target.name === 'admin');
    assert.deepEqual(offline && [offline.actor.kind, offline.actor.name, offline.address], ['system', 'reef user reset-password --data', null]);
  });
});

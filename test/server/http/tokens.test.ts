/**
 * Join tokens end to end on one real API server: made and listed over REST and with the
 * real `reef tokens` CLI, used by the real `tentacle register-with --token`, refused
 * outside their scope, after expiry, after their last use, after revocation and on every
 * route but registration; two registrations racing for a token's last use.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { CreatedJoinToken, JoinTokenView } from '../../../src/api/contract.js';
import { spkiPinOfPem } from '../../../src/pki/spki-pin.js';
import { storedSecretHash } from '../../../src/server/auth/secret-hash.js';
import { installScript, shellQuote } from '../../../src/server/install/tentacle-install.js';
import { newCertificate } from '../../../src/tentacle/certificate.js';
import { createInstance } from '../../../src/tentacle/instances.js';
import { tentacleCli, type TentacleCli } from '../../cli/tentacle-cli.js';
import { REEF_BIN } from '../../support/built.js';
import { runTracked } from '../../support/processes.js';
import { thumbprint } from '../store/helpers.js';
import { startHarness, type Harness, type RawResponse } from './harness.js';

const TOKEN = /^RJT-[A-Z2-7]{32}$/;

describe('join tokens', () => {
  let h: Harness;
  let cli: TentacleCli;
  let reefArgs: string[];

  before(async () => {
    h = await startHarness({}, {
      publicKeyPin: () => spkiPinOfPem(h.identity.certPem),
      portalThumbprint: () => h.identity.thumbprint,
      websocketPath: '/reef/comms',
    });
    cli = await tentacleCli();
    for (const name of ['Web1', 'Web2', 'Build1']) await createInstance(name, {}, cli.root).then((r) => newCertificate(r.config));
    reefArgs = ['--server', h.url, '--api-key', h.adminKey, '--server-thumbprint', h.identity.thumbprint];
  });

  after(async () => {
    await cli?.close();
    await h?.close();
  });

  const mint = async (body: object): Promise<CreatedJoinToken> => {
    const res = await h.raw('POST', '/api/tokens', { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(res.status, 201, res.text);
    return res.json as CreatedJoinToken;
  };
  const web = () => mint({ environments: ['Production'], roles: ['web'] });
  const register = (token: string, body: object): Promise<RawResponse> =>
    h.raw('POST', '/api/machines', {
      headers: { 'content-type': 'application/json', 'x-reef-apikey': token },
      body: JSON.stringify({ kind: 'target', thumbprint: thumbprint(), commsStyle: 'polling', ...body }),
    });
  const tokenView = async (id: string): Promise<JoinTokenView> =>
    ((await h.raw('GET', '/api/tokens')).json.items as JoinTokenView[]).find((t) => t.id === id)!;
  const reef = (args: string[]) => runTracked(process.execPath, [REEF_BIN, ...args, ...reefArgs], { env: { ...process.env, REEF_DEBUG: '' }, timeoutMs: 30_000 });

  it('is made, listed (never the token or its hash) and revoked over REST; bad scopes and lifetimes are refused', async () => {
    const created = await mint({ environments: ['Production'], roles: ['web'], uses: 3, expiresInSeconds: 600 });
    assert.match(created.token, TOKEN);
    assert.equal(created.kind, 'target');
    assert.deepEqual([created.environments, created.roles, created.workerPools], [['Production'], ['web'], []]);
    assert.equal(created.usesLeft, 3);
    assert.equal(created.state, 'active');
    assert.match(created.createdBy, /^API key "admin" \(key-/);
    assert.ok(Math.abs(Date.parse(created.expiresAt) - Date.now() - 600_000) < 10_000);
    const list = await h.raw('GET', '/api/tokens');
    assert.ok(!list.text.includes(created.token) && !list.text.includes('sha256$'), 'the list holds neither the token nor its hash');
    assert.equal((await tokenView(created.id)).state, 'active');
    assert.equal((await h.raw('DELETE', `/api/tokens/${created.id}`)).status, 204);
    assert.equal((await tokenView(created.id)).state, 'revoked');
    const again = await h.raw('DELETE', `/api/tokens/${created.id}`);
    assert.equal(again.json.error.code, 'REEF_NOT_FOUND');

    for (const [body, pattern] of [
      [{ environments: ['Production'] }, /at least one environment and one role/],
      [{ environments: ['Production'], roles: ['web'], workerPools: ['Builders'] }, /not both/],
      [{ workerPools: ['Builders'], expiresInSeconds: 31 * 86_400 }, /expiresInSeconds/],
      [{ workerPools: ['Builders'], uses: 0 }, /uses/],
    ] as const) {
      const res = await h.raw('POST', '/api/tokens', { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(res.status, 400, res.text);
      assert.match(res.text, pattern);
    }

    // A bad install option is refused before the token is made: none is left behind.
    const before = (await h.raw('GET', '/api/tokens')).json.items.length;
    for (const [install, pattern] of [
      [{ carrier: 'comms-port', commsAddress: 'https://polling.example' }, /goes with the https or websocket carrier/],
      [{ carrier: 'websocket', commsAddress: 'https://reef.example/reef/comms' }, /must start with wss:/],
      [{ proxy: 'https://proxy.example:3128' }, /The proxy must start with http:/],
    ] as const) {
      const res = await h.raw('POST', '/api/tokens', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ workerPools: ['Builders'], install }) });
      assert.equal(res.status, 400, res.text);
      assert.match(res.json.error.message, pattern);
    }
    assert.equal((await h.raw('GET', '/api/tokens')).json.items.length, before);
  });

  it('registers a Tentacle with register-with --token into the token\'s scope when it names none', async () => {
    const { token, id } = await web();
    const result = await cli.run(['register-with', '--instance', 'Web1', '--server', h.url, '--server-thumbprint', h.identity.thumbprint, '--token', token, '--name', 'web-01']);
    assert.equal(result.code, 0, result.stderr);
    const machine = await h.store.getMachine(result.stdout.trim());
    assert.deepEqual([machine?.name, machine?.kind, machine?.environments, machine?.roles], ['web-01', 'target', ['Production'], ['web']]);
    const view = await tokenView(id);
    assert.deepEqual([view.usesLeft, view.state], [0, 'used-up']);
    assert.ok(view.lastUsedAt);

    // Its one use is spent: the next Tentacle is told so, and what to do, with no advice about API keys.
    const second = await cli.run(['register-with', '--instance', 'Web2', '--server', h.url, '--server-thumbprint', h.identity.thumbprint, '--name', 'web-02'], { REEF_JOIN_TOKEN: token });
    assert.equal(second.code, 1);
    assert.match(second.stderr, /used for all 1 registration it allowed\. Ask an administrator for a new join token \(`reef tokens create`/);
    assert.doesNotMatch(second.stderr, /--apiKey/);
    assert.equal(await h.store.getMachine('web-02'), null);
  });

  it('refuses registrations outside the scope, taking no use', async () => {
    const { token, id } = await web();
    for (const [body, pattern] of [
      [{ name: 'x1', environments: ['Test'] }, /does not cover environment "Test"/],
      [{ name: 'x2', environments: ['Production', 'Test'], roles: ['web'] }, /does not cover environment "Test"/],
      [{ name: 'x3', roles: ['db'] }, /does not cover role "db"/],
      [{ name: 'x4', kind: 'worker', workerPools: ['Builders'] }, /cannot register a worker/],
      [{ name: 'x5', workerPools: ['Builders'] }, /cannot put a deployment target in worker pools/],
      [{ name: 'x6', force: true }, /cannot replace an existing registration/],
    ] as const) {
      const res = await register(token, body);
      assert.equal(res.status, 403, res.text);
      assert.equal(res.json.error.code, 'REEF_JOIN_TOKEN_OUT_OF_SCOPE');
      assert.match(res.json.error.message, pattern);
      assert.match(res.json.error.message, /registers deployment targets in Production with role web only/);
    }
    assert.equal((await tokenView(id)).usesLeft, 1);
    // Any case of a name in scope is in scope; the machine keeps the case it asked for.
    const ok = await register(token, { name: 'x7', environments: ['production'], roles: ['WEB'] });
    assert.equal(ok.status, 201, ok.text);
  });

  it('is refused on every route but registration, before it is looked up', async () => {
    const { token, id } = await web();
    const routes: [string, string][] = [
      ['GET', '/api'],
      ['GET', '/api/machines'],
      ['GET', '/api/machines/web-01'],
      ['DELETE', '/api/machines/web-01'],
      ['DELETE', `/api/machines/by-thumbprint/${thumbprint()}`],
      ['GET', '/api/environments'],
      ['GET', '/api/tasks'],
      ['POST', '/api/tasks'],
      ['GET', '/api/tasks/T-000001/log/stream'],
      ['GET', '/api/tokens'],
      ['POST', '/api/tokens'],
      ['DELETE', `/api/tokens/${id}`],
      ['GET', '/api/apikeys'],
      ['POST', '/api/apikeys'],
      ['GET', '/metrics'],
    ];
    for (const [method, path] of routes) {
      for (const headers of [{ 'x-reef-apikey': token }, { authorization: `Bearer ${token}` }] as Record<string, string>[]) {
        const res = await h.raw(method, path, { headers: { ...headers, 'content-type': 'application/json' }, body: method === 'POST' ? '{}' : undefined });
        assert.equal(res.status, 403, `${method} ${path}: ${res.text}`);
        assert.equal(res.json.error.code, 'REEF_JOIN_TOKEN_NOT_ALLOWED', `${method} ${path}`);
        assert.match(res.json.error.message, /can only register a machine/);
      }
    }
    // The token is untouched and still registers.
    assert.equal((await register(token, { name: 'after-refusals', environments: ['Production'], roles: ['web'] })).status, 201);
  });

  it('says whether a token is expired, used up, revoked or unknown', async () => {
    const expired = `RJT-${'EXPIRED2'.repeat(4)}`;
    await h.store.insertJoinToken({
      hash: storedSecretHash(expired),
      scope: { kind: 'target', environments: ['Production'], roles: ['web'], workerPools: [] },
      uses: 1,
      createdBy: 'test',
      expiresAt: new Date(Date.now() - 1000),
    });
    const revoked = await web();
    await h.raw('DELETE', `/api/tokens/${revoked.id}`);
    const usedUp = await web();
    assert.equal((await register(usedUp.token, { name: 'uses-it-up' })).status, 201);
    for (const [token, code, pattern] of [
      [expired, 'REEF_JOIN_TOKEN_EXPIRED', /expired at .* Ask an administrator for a new join token/],
      [revoked.token, 'REEF_JOIN_TOKEN_REVOKED', /was revoked at .* Ask an administrator for a new join token/],
      [usedUp.token, 'REEF_JOIN_TOKEN_USED_UP', /used for all 1 registration/],
      ['RJT-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'REEF_JOIN_TOKEN_INVALID', /unknown or mistyped/],
    ] as const) {
      const res = await register(token, { name: `refused-${code}` });
      assert.equal(res.status, 401, res.text);
      assert.equal(res.json.error.code, code);
      assert.match(res.json.error.message, pattern);
    }
  });

  it('gives the last use to exactly one of two registrations racing for it', async () => {
    for (let round = 0; round < 5; round++) {
      const { token, id } = await web();
      const results = await Promise.all([register(token, { name: `race-${round}-a` }), register(token, { name: `race-${round}-b` })]);
      const statuses = results.map((r) => r.status).sort();
      assert.deepEqual(statuses, [201, 401], results.map((r) => r.text).join('\n'));
      assert.equal(results.find((r) => r.status === 401)!.json.error.code, 'REEF_JOIN_TOKEN_USED_UP');
      assert.equal((await tokenView(id)).usesLeft, 0);
    }
  });

  it('keeps its use when the registration itself fails (a name taken)', async () => {
    const { token, id } = await web();
    const res = await register(token, { name: 'web-01' });
    assert.equal(res.status, 409, res.text);
    assert.equal((await tokenView(id)).usesLeft, 1);
  });

  it('registers workers with register-worker --token, and a worker token makes no target', async () => {
    const { token } = await mint({ workerPools: ['Builders'], uses: 2 });
    const asTarget = await cli.run(['register-with', '--instance', 'Build1', '--server', h.url, '--server-thumbprint', h.identity.thumbprint, '--token', token]);
    assert.equal(asTarget.code, 1);
    assert.match(asTarget.stderr, /cannot register a deployment target; it registers workers in worker pool Builders only/);
    const result = await cli.run(['register-worker', '--instance', 'Build1', '--server', h.url, '--server-thumbprint', h.identity.thumbprint, '--token', token, '--name', 'build-01']);
    assert.equal(result.code, 0, result.stderr);
    const machine = await h.store.getMachine('build-01');
    assert.deepEqual([machine?.kind, machine?.workerPools], ['worker', ['Builders']]);
  });

  it('still needs --environment and --role, or a token, on register-with; and not a key and a token', async () => {
    const result = await cli.run(['register-with', '--instance', 'Web2', '--server', h.url, '--server-thumbprint', h.identity.thumbprint, '--apiKey', h.adminKey, '--role', 'web']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /required option '--environment <name>' not specified \(or register with --token/);
    const neither = await cli.run(['register-with', '--instance', 'Web2', '--server', h.url, '--environment', 'Production', '--role', 'web'], { REEF_API_KEY: '' });
    assert.equal(neither.code, 1);
    assert.match(neither.stderr, /--apiKey <key>' or '--token <token>' not specified/);
    const both = await cli.run(['register-with', '--instance', 'Web2', '--server', h.url, '--apiKey', h.adminKey, '--token', 'RJT-X'], { REEF_API_KEY: '' });
    assert.equal(both.code, 1);
    assert.match(both.stderr, /Give --apiKey or --token, not both/);
  });

  it('reef tokens create prints the token alone, or with --print-install the install line; list and revoke', async () => {
    // Independent commands, run side by side (each is a process start).
    const [created, install, withProxy, refused, named] = await Promise.all([
      reef(['tokens', 'create', '--environment', 'Production', '--role', 'web', '--uses', '2', '--expires', '2h']),
      reef(['tokens', 'create', '--worker-pool', 'Builders', '--print-install', '--carrier', 'websocket']),
      reef(['tokens', 'create', '--environment', 'Test', '--role', 'db', '--print-install', '--carrier', 'https', '--proxy', 'http://proxy.example:3128']),
      reef(['tokens', 'create', '--environment', 'Test', '--role', 'db', '--expires', '31d']),
      reef(['tokens', 'create', '--environment', 'Test', '--role', 'db', '--print-install', '--server-url', 'https://reef.example.com:8443']),
    ]);
    assert.equal(named.code, 0, named.stderr);
    assert.ok(named.stdout.includes(`'https://reef.example.com:8443/downloads/install-tentacle.sh'`) && named.stdout.includes(`--server 'https://reef.example.com:8443'`), named.stdout);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^RJT-[A-Z2-7]{32}\n$/);

    assert.equal(install.code, 0, install.stderr);
    const line = install.stdout.trim();
    assert.equal(install.stdout.split('\n').filter(Boolean).length, 1, 'one line');
    const pin = spkiPinOfPem(h.identity.certPem);
    assert.ok(line.startsWith(`curl --pinnedpubkey ${shellQuote(pin)} --insecure -fsS '${h.url}/downloads/install-tentacle.sh' | REEF_JOIN_TOKEN='RJT-`), line);
    assert.match(line, new RegExp(`sh -s -- --server '${h.url}' --pin '${pin.replace(/[+/]/g, '\\$&')}' --thumbprint '${h.identity.thumbprint}' --kind 'worker'`));
    assert.ok(line.includes(`--carrier 'websocket' --comms-address 'wss://${new URL(h.url).host}/reef/comms'`), line);

    assert.equal(withProxy.code, 0, withProxy.stderr);
    assert.ok(withProxy.stdout.includes(`--insecure -fsS --proxy 'http://proxy.example:3128' '${h.url}/downloads/`), withProxy.stdout);
    assert.ok(withProxy.stdout.includes(`--carrier 'https' --comms-address '${h.url}' --proxy 'http://proxy.example:3128'`), withProxy.stdout);

    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /--expires must be between 1m and 30d/);

    const listed = await reef(['tokens', 'list']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^ID\s+SCOPE\s+USES LEFT\s+EXPIRES\s+STATE\s+CREATED BY/);
    assert.match(listed.stdout, /targets in Production as web\s+2\/2\s+\S+\s+active\s+API key "admin"/);
    assert.match(listed.stdout, /workers in Builders\s+1\/1/);
    const id = /^(tok-[a-z2-7]{12})\s+targets in Test as db/m.exec(listed.stdout)![1]!;
    const revoked = await reef(['tokens', 'revoke', id]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal((await tokenView(id)).state, 'revoked');
  });

  // Last: it leaves this address blocked for a minute.
  it('counts guessed tokens against the address\'s failed attempts, like API keys', async () => {
    // The unknown token above was one failure already: the 20th failure of the minute is the limit.
    const answers: RawResponse[] = [];
    for (let i = 0; i < 21; i++) answers.push(await register(`RJT-${'B'.repeat(31)}${'234567'[i % 6]}`, { name: `guess-${i}` }));
    const statuses = answers.map((a) => a.status);
    const first429 = statuses.indexOf(429);
    assert.ok(first429 >= 18 && first429 <= 20, statuses.join(','));
    assert.ok(statuses.slice(0, first429).every((s) => s === 401) && statuses.slice(first429).every((s) => s === 429), statuses.join(','));
    assert.equal(answers[first429]!.json.error.code, 'REEF_RATE_LIMITED');
    assert.ok(Number(answers[first429]!.headers['retry-after']) > 0);
  });

  it('serves an install script that sh parses', () => {
    const result = spawnSync('sh', ['-n'], { input: installScript(), encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(shellQuote("it's"), `'it'\\''s'`);
  });
});

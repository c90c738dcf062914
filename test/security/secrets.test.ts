/**
 * Secrets at rest and in logs, on real processes: a `reef server run` at debug log level
 * never writes an API key or password to its log (stderr), whether the request succeeds
 * or fails; the SQLite file holds hashes only (SHA-256 for keys, scrypt for passwords), never a key or the admin password;
 * the server's and the Tentacle's private keys and the Tentacle's config file are 0600.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, stat } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { ApiClient } from '../../src/api/client.js';
import { ReefError } from '../../src/errors.js';
import { tentacleCli, type TentacleCli } from '../cli/tentacle-cli.js';
import { REEF_BIN } from '../support/built.js';
import { spawnTracked, stopAll, trackedTempDir } from '../support/processes.js';
import { freePort } from '../support/tinyproxy.js';

const REEF = REEF_BIN;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

function request(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, method, path, headers, rejectUnauthorized: false, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(path)));
    else out.push(path);
  }
  return out;
}

const mode = async (path: string) => (await stat(path)).mode & 0o777;

describe('security: secrets in logs, in the store, on disk', () => {
  let dataDir: string;
  let stderr = '';
  let stdout = '';
  let child: ChildProcess;
  let port: number;
  let adminKey: string;
  let adminPassword: string;
  let thumbprint: string;
  /** Every secret this test presented to the server, right or wrong. */
  const secrets: string[] = [];

  before(async () => {
    dataDir = await trackedTempDir('reef-secrets-');
    port = await freePort();
    const comms = await freePort([port]);
    child = spawnTracked(process.execPath, [REEF, 'server', 'run', '--data', dataDir, '--https-port', String(port), '--comms-port', String(comms), '--host', '127.0.0.1'], {
      env: { ...process.env, REEF_LOG_LEVEL: 'debug' },
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const deadline = Date.now() + 60_000;
    while (!/Stop it with Ctrl\+C/.test(stdout)) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the server did not start:\n${stdout}\n${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    adminKey = /Admin API key[^:]*:\s+(API-\S+)/.exec(stdout)![1]!;
    adminPassword = /Admin sign-in[^:]*:\s+admin \/ (\S+)/.exec(stdout)![1]!;
    thumbprint = /Thumbprint:\s+([0-9A-F]{64})/.exec(stdout)![1]!;
    secrets.push(adminKey, adminPassword);

    const api = (key: string) => new ApiClient({ server: `https://127.0.0.1:${port}`, apiKey: key, serverThumbprint: thumbprint, timeoutMs: 10_000 });
    // Authenticated requests, both headers, a key created and used and revoked over the API.
    await api(adminKey).json('GET', '/api');
    assert.equal((await request(port, 'GET', '/api/machines', { authorization: `Bearer ${adminKey}` })).status, 200);
    const created = await api(adminKey).json<{ id: string; key: string }>('POST', '/api/apikeys', { body: { name: 'ci' } });
    secrets.push(created.key);
    await api(created.key).json('GET', '/api/machines');
    await api(adminKey).json('DELETE', `/api/apikeys/${created.id}`);
    // Failed ones: the revoked key, a near miss sharing the admin key's prefix, a malformed key, a key for a missing route.
    const nearMiss = adminKey.slice(0, 12) + (adminKey.slice(12).split('').reverse().join('') === adminKey.slice(12) ? 'A'.repeat(24) : adminKey.slice(12).split('').reverse().join(''));
    const wrong = 'API-' + 'Q'.repeat(32);
    const malformed = 'not-an-api-key-but-secret-1234567890';
    secrets.push(nearMiss, wrong, malformed);
    for (const key of [created.key, nearMiss, wrong]) {
      await assert.rejects(api(key).json('GET', '/api'), (e: ReefError) => e.code === 'REEF_BAD_API_KEY');
    }
    assert.equal((await request(port, 'GET', '/api', { 'x-reef-apikey': malformed })).status, 401);
    assert.equal((await request(port, 'GET', '/api/nowhere', { authorization: `Bearer ${wrong}` })).status, 404);
    assert.equal((await request(port, 'POST', '/api/machines', { 'x-reef-apikey': adminKey, 'content-type': 'application/json' }, '{"broken')).status, 400);

    // Join tokens: one made with its install line, used, then used again (used up), a wrong one, one on another route.
    const joinToken = await api(adminKey).json<{ id: string; token: string }>('POST', '/api/tokens', { body: { environments: ['Production'], roles: ['web'], install: {} } });
    const wrongToken = 'RJT-' + 'Q'.repeat(32);
    secrets.push(joinToken.token, wrongToken);
    const registration = (name: string) => JSON.stringify({ name, kind: 'target', thumbprint: name.padEnd(64, '0').replace(/[^0-9A-F]/gi, 'A'), commsStyle: 'polling' });
    assert.equal((await request(port, 'POST', '/api/machines', { 'x-reef-apikey': joinToken.token, 'content-type': 'application/json' }, registration('a1'))).status, 201);
    assert.equal((await request(port, 'POST', '/api/machines', { authorization: `Bearer ${joinToken.token}`, 'content-type': 'application/json' }, registration('b2'))).status, 401);
    assert.equal((await request(port, 'POST', '/api/machines', { 'x-reef-apikey': wrongToken, 'content-type': 'application/json' }, registration('c3'))).status, 401);
    assert.equal((await request(port, 'GET', '/api/machines', { 'x-reef-apikey': joinToken.token })).status, 403);

    // Portal sign-in: a wrong password, then the right one.
    const wrongPassword = 'wrong-password-' + adminPassword.slice(0, 6);
    secrets.push(wrongPassword);
    for (const password of [wrongPassword, adminPassword]) {
      const page = await request(port, 'GET', '/login');
      const cookie = String(page.headers['set-cookie']).split(';')[0]!;
      const token = cookie.split('=')[1]!;
      const form = new URLSearchParams({ csrf: token, username: 'admin', password, next: '/' }).toString();
      const r = await request(port, 'POST', '/login', { cookie, 'content-type': 'application/x-www-form-urlencoded' }, form);
      assert.equal(r.status, password === adminPassword ? 303 : 401, r.text.slice(0, 200));
    }

    child.kill('SIGTERM');
    await once(child, 'exit');
  });
  after(() => stopAll());

  test('no API key, join token or password appears in the debug-level server log, though the requests are logged', () => {
    assert.match(stderr, /"level":20/, 'the log has debug lines');
    assert.match(stderr, /\/api\/apikeys/, 'the requests are logged');
    assert.match(stderr, /sign-in refused/, 'the failed sign-in is logged');
    for (const secret of secrets) {
      assert.ok(!stderr.includes(secret), `the log contains a secret (${secret.slice(0, 8)}...)`);
      if (secret.startsWith('API-')) assert.ok(!stderr.includes(secret.slice(12)), `the log contains the secret part of ${secret.slice(0, 12)}...`);
      if (secret.startsWith('RJT-')) assert.ok(!stderr.includes(secret.slice(4)), 'the log contains a join token without its RJT-');
    }
  });

  test('the SQLite store holds hashes only: no key or password is findable in its files', async () => {
    const files = (await readdir(dataDir)).filter((f) => f.startsWith('reef.db')).map((f) => join(dataDir, f));
    assert.ok(files.length >= 1);
    for (const file of files) {
      const bytes = await readFile(file);
      for (const secret of secrets) {
        for (const encoding of ['utf8', 'utf16le'] as const) assert.equal(bytes.indexOf(Buffer.from(secret, encoding)), -1, `${file} contains a secret`);
        if (secret.startsWith('API-')) assert.equal(bytes.indexOf(Buffer.from(secret.slice(12))), -1, `${file} contains the secret part of a key`);
        if (secret.startsWith('RJT-')) assert.equal(bytes.indexOf(Buffer.from(secret.slice(4))), -1, `${file} contains a join token`);
      }
    }
    const db = new Database(join(dataDir, 'reef.db'), { readonly: true });
    try {
      const row = db.prepare('SELECT prefix, hash, salt FROM api_keys WHERE prefix = ?').get(adminKey.slice(4, 12)) as { prefix: string; hash: string; salt: string };
      assert.ok(row, 'the admin key has a row, found by its prefix');
      assert.equal(row.hash, `sha256$${createHash('sha256').update(adminKey).digest('base64')}`, 'the stored hash is SHA-256(key)');
      const token = secrets.find((secret) => secret.startsWith('RJT-'))!;
      const tokens = db.prepare('SELECT hash FROM join_tokens').all() as { hash: string }[];
      assert.deepEqual(tokens, [{ hash: `sha256$${createHash('sha256').update(token).digest('base64')}` }], 'the join token is stored as SHA-256(token)');
      const user = db.prepare("SELECT password_hash FROM users WHERE username = 'admin'").get() as { password_hash: string };
      assert.match(user.password_hash, /^scrypt\$N=\d+,r=\d+,p=\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    } finally {
      db.close();
    }
  });

  test('the server data directory is 0700 and its private key 0600', async () => {
    assert.equal(await mode(dataDir), 0o700);
    const keys = (await walk(dataDir)).filter((f) => f.endsWith('.key.pem'));
    assert.ok(keys.length >= 1, 'the server key is in the data directory');
    for (const key of keys) assert.equal(await mode(key), 0o600, key);
  });

  describe('the Tentacle', () => {
    let cli: TentacleCli;
    before(async () => {
      cli = await tentacleCli();
    });
    after(() => cli.close());

    test('its private key and its config file (which may hold proxy passwords) are 0600', async () => {
      await cli.ok(['create-instance', '--instance', 'Tentacle']);
      await cli.ok(['new-certificate', '--instance', 'Tentacle']);
      await cli.ok(['polling-proxy', '--instance', 'Tentacle', '--proxyEnable', 'true', '--proxyHost', 'proxy.local', '--proxyPort', '3128', '--proxyUsername', 'u', '--proxyPassword', 'proxy-secret']);
      const files = await walk(cli.root);
      const keys = files.filter((f) => f.endsWith('.key.pem'));
      const configs = files.filter((f) => f.endsWith('tentacle.json'));
      assert.ok(keys.length >= 1 && configs.length >= 1, files.join('\n'));
      for (const file of [...keys, ...configs]) assert.equal(await mode(file), 0o600, file);
      assert.match(await readFile(configs[0]!, 'utf8'), /proxy-secret/, 'the password is in this file, which is why it is 0600');
    });
  });
});

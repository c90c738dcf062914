/**
 * Starting `reef server run` as a user does, when it cannot: a taken port ends the process
 * at once with a message naming the port and its holder, leaving nothing listening; and
 * the credentials of a first run survive in a 0600 file until admin first signs in.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { REEF_BIN } from '../support/built.js';
import { runTracked } from '../support/processes.js';
import { freePort, startServer, stopAll, tempDir } from './harness.js';

/** A listener in this process, as another program holding a port would be. */
async function holdPort(): Promise<net.Server> {
  const server = net.createServer((socket) => socket.destroy());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

const portOf = (server: net.Server) => (server.address() as net.AddressInfo).port;

/** Whether the port can be bound now (nothing is left listening on it). */
async function bindable(port: number): Promise<boolean> {
  const probe = net.createServer();
  return new Promise((resolve) => {
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** `reef server run` to its end; how long it ran. */
async function runServer(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  const result = await runTracked(process.execPath, [REEF_BIN, 'server', 'run', '--host', '127.0.0.1', ...args], { env: { ...process.env, REEF_LOG_LEVEL: 'warn' }, timeoutMs: 30_000 });
  return { ...result, ms: Date.now() - started };
}

describe('reef server run on a taken port', () => {
  after(() => stopAll());

  for (const which of ['https', 'comms'] as const) {
    test(`a taken ${which} port: a message naming the port and its holder, exit code 1 at once, nothing left listening`, async () => {
      const dataDir = await tempDir(`taken-${which}`);
      const taken = await holdPort();
      const free = await freePort();
      const [httpsPort, commsPort] = which === 'https' ? [portOf(taken), free] : [free, portOf(taken)];
      try {
        // A start that gets as far as the port, timed once warm (the first start also makes the certificate and the store).
        const run = await runServer(['--data', dataDir, '--https-port', String(httpsPort), '--comms-port', String(commsPort)]);
        assert.equal(run.code, 1, `exit code; stderr: ${run.stderr}`);
        const what = which === 'https' ? 'HTTPS port' : 'comms port';
        assert.match(run.stderr, new RegExp(`^error: Cannot listen on the ${what} ${portOf(taken)} at 127\\.0\\.0\\.1: another program already uses it \\(held by node, pid ${process.pid}, user \\S+\\)\\. `, 'm'));
        assert.match(run.stderr, new RegExp(`--${which}-port`));
        assert.doesNotMatch(run.stdout, /Reef server is running/);
        assert.equal(await bindable(free), true, 'the other port is free again');
        assert.equal(existsSync(join(dataDir, 'reef.db-wal')), false, 'the store is closed');
        // No credentials were used up by the failed start.
        assert.equal(existsSync(join(dataDir, 'initial-admin-credentials')), false);

        // Timed against a command that loads the same code (Node, the CLI, the server runtime) and
        // reads the data directory: a busy machine loads slowly, and that is not what is measured.
        const started = Date.now();
        const baseline = await runTracked(process.execPath, [REEF_BIN, 'server', 'show-thumbprint', '--data', dataDir], { timeoutMs: 30_000 });
        const loading = Date.now() - started;
        assert.equal(baseline.code, 0, baseline.stderr);
        const again = await runServer(['--data', dataDir, '--https-port', String(httpsPort), '--comms-port', String(commsPort)]);
        assert.equal(again.code, 1);
        assert.ok(again.ms < 2_000 + loading, `it took ${again.ms} ms to give up (${loading} ms to load the same code)`);
        console.log(`# taken ${which} port: exit 1 after ${again.ms} ms; loading the same code takes ${loading} ms`);
      } finally {
        taken.close();
      }
    });
  }
});

test('the same port for HTTPS and comms is refused before anything starts', async () => {
  const dataDir = await tempDir('same-port');
  const port = await freePort();
  const run = await runServer(['--data', dataDir, '--https-port', String(port), '--comms-port', String(port)]);
  assert.equal(run.code, 1);
  assert.equal(run.stderr, `error: The HTTPS port and the comms port are both ${port}; give them different ports (--https-port, --comms-port).\n`);
  assert.equal(await bindable(port), true);
});

describe('first-run credentials', () => {
  after(() => stopAll());

  test('are kept in a 0600 file named at start-up until admin first signs in, then deleted', async () => {
    const dataDir = await tempDir('first-run');
    const file = join(dataDir, 'initial-admin-credentials');
    const [httpsPort, commsPort] = [await freePort(), await freePort()];
    const first = await startServer({ dataDir, httpsPort, commsPort, name: 'first-run' });
    assert.ok(first.adminPassword && first.adminKey);
    assert.match(first.banner, new RegExp(`First-run credentials kept in ${escape(file)} \\(mode 0600\\) until admin first signs in`));
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const text = await readFile(file, 'utf8');
    assert.match(text, new RegExp(`^username: admin$`, 'm'));
    assert.match(text, new RegExp(`^password: ${first.adminPassword}$`, 'm'));
    assert.match(text, new RegExp(`^api-key: ${first.adminKey}$`, 'm'));
    await first.kill();

    // A later start prints no password, but still says where it is.
    const second = await startServer({ dataDir, httpsPort, commsPort, name: 'first-run-2' });
    assert.equal(second.adminPassword, undefined);
    assert.match(second.banner, /First-run credentials kept in/);
    // A failed sign-in leaves the file; the first successful one deletes it.
    assert.equal(await signIn(second.url, 'admin', 'wrong password'), 401);
    assert.ok(existsSync(file));
    assert.equal(await signIn(second.url, 'admin', first.adminPassword), 303);
    assert.equal(existsSync(file), false, 'deleted at the first sign-in');
    await second.kill();

    const third = await startServer({ dataDir, httpsPort, commsPort, name: 'first-run-3' });
    assert.doesNotMatch(third.banner, /First-run credentials/);
    await third.kill();
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Signs in through the portal's form, as a browser does; returns the status (303 on success). */
async function signIn(url: string, username: string, password: string): Promise<number> {
  const form = await fetchRaw(url, 'GET', '/login');
  const loginCookie = String(form.headers['set-cookie']).split(';')[0]!;
  const body = new URLSearchParams({ csrf: loginCookie.split('=')[1]!, username, password }).toString();
  const answer = await fetchRaw(url, 'POST', '/login', { 'content-type': 'application/x-www-form-urlencoded', cookie: loginCookie }, body);
  return answer.status;
}

function fetchRaw(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, base), { method, headers, rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

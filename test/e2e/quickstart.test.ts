/**
 * The README's first command stays true: `npm run quickstart` starts a server and a local
 * polling Tentacle, runs a script through them, prints its log, keeps running, and stops
 * everything on Ctrl+C. It runs in a copy of the checkout without dist/, as a fresh clone
 * after `npm ci` is (node_modules is linked, not installed again), so it also shows that
 * the quick start builds Reef first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { join } from 'node:path';
import { copyCheckout } from '../support/checkout.js';
import { runTracked, spawnTracked } from '../support/processes.js';
import { freePort, REPO, stopAll, tempDir } from './harness.js';

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

test('npm run quickstart builds Reef, runs a script end to end, keeps running, and stops cleanly on Ctrl+C', async () => {
  const clone = await copyCheckout();
  const home = await tempDir('quickstart');
  const httpsPort = await freePort();
  const commsPort = await freePort();
  const child = spawnTracked(process.execPath, ['--import', 'tsx', join(clone, 'scripts/quickstart.ts')], {
    cwd: clone,
    env: { ...process.env, REEF_HOME: home, REEF_HTTPS_PORT: String(httpsPort), REEF_COMMS_PORT: String(commsPort) },
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`quickstart did not get ready in 90 s:\n${out}`)), 90_000);
      child.stdout!.on('data', () => {
        if (out.includes('Press Ctrl+C')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`quickstart exited early with ${code}:\n${out}`)));
    });
    assert.match(out, /==> Building Reef \(npm run build\)\nBuilt \d+ modules/, 'a clone without dist/ is built first');
    assert.match(out, /\] Hello from .*, user /);
    assert.match(out, /Task T-000001 Success/);
    assert.match(out, new RegExp(`Portal: +https://localhost:${httpsPort}/ `));
    assert.match(out, /Sign in: +admin \/ \S{12,}/, 'the first run shows the admin password');
    assert.match(out, new RegExp(`REST API: +https://localhost:${httpsPort}/api`));
    assert.equal(await portOpen(httpsPort), true, 'the server keeps running');
    child.kill('SIGINT');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0, out);
    assert.equal(await portOpen(httpsPort), false, 'the server stopped with it');
    assert.equal(await portOpen(commsPort), false);
  } finally {
    await stopAll();
  }
});

test('npm run quickstart with its HTTPS port taken shows the server\'s error and exits non-zero at once, instead of waiting', async () => {
  const home = await tempDir('quickstart-taken');
  const taken = net.createServer((socket) => socket.destroy());
  taken.listen(0, '127.0.0.1');
  await once(taken, 'listening');
  const httpsPort = (taken.address() as net.AddressInfo).port;
  const commsPort = await freePort();
  try {
    // This checkout, built (test/support/built.ts): the quick start does not build again.
    const started = Date.now();
    const result = await runTracked(process.execPath, ['--import', 'tsx', join(REPO, 'scripts/quickstart.ts')], {
      cwd: REPO,
      env: { ...process.env, REEF_HOME: home, REEF_HTTPS_PORT: String(httpsPort), REEF_COMMS_PORT: String(commsPort) },
      timeoutMs: 60_000,
    });
    const ms = Date.now() - started;
    assert.equal(result.code, 1, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stderr, /quickstart failed: server could not start \(exit code 1\):\nerror: Cannot listen on the HTTPS port \d+ at 0\.0\.0\.0: another program already uses it/);
    assert.match(result.stderr, new RegExp(`\\(full log: ${home.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/server\\.log\\)`));
    assert.doesNotMatch(result.stdout, /Setting up a local polling Tentacle/);
    assert.equal(await portOpen(commsPort), false, 'the server left nothing listening');
    console.log(`# quickstart on a taken port: exit 1 after ${ms} ms`);
  } finally {
    taken.close();
    await stopAll();
  }
});

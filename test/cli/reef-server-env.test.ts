/**
 * `reef server run` takes its settings from REEF_* environment variables too (what the
 * service's EnvironmentFile= sets): flags win over variables, variables over the config file.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { freePort } from '../e2e/harness.js';
import { REEF_BIN } from '../support/built.js';
import { runTracked, spawnTracked, stopAll, stopProcess, trackedTempDir } from '../support/processes.js';

after(stopAll);

const REEF = REEF_BIN;

/** Starts `reef server run` and returns its banner once it is up. */
async function startedBanner(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const child = spawnTracked(process.execPath, [REEF, 'server', 'run', ...args], { env: { ...process.env, REEF_LOG_LEVEL: 'warn', ...env } });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server did not start within 60 s:\n${out}`)), 60_000);
      child.stdout!.on('data', () => {
        if (out.includes('Stop it with Ctrl+C')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the server exited with ${code}:\n${out}`));
      });
    });
    return out;
  } finally {
    await stopProcess(child);
  }
}

test('settings from REEF_* variables; flags win over them, they win over the config file', async () => {
  const dir = await trackedTempDir('reef-server-env-');
  const [httpsPort, commsPort, filePort, flagPort, metricsPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const config = join(dir, 'server.json');
  await writeFile(config, JSON.stringify({ httpsPort: filePort, nodeName: 'from-the-file', websocketPath: '/file/comms' }));
  const banner = await startedBanner(['--data', join(dir, 'data'), '--comms-port', String(flagPort), '--host', '127.0.0.1'], {
    REEF_CONFIG: config,
    REEF_HTTPS_PORT: String(httpsPort),
    REEF_COMMS_PORT: String(commsPort),
    REEF_POLLING_HOSTNAMES: 'polling.example.com, second.example.com',
    REEF_WEBSOCKET_PATH: '/env/comms',
    REEF_PROXY_PROTOCOL: 'false',
    REEF_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
  });
  assert.match(banner, new RegExp(`Portal: +https://127\\.0\\.0\\.1:${httpsPort}/`), 'the variable beats the file');
  assert.match(banner, new RegExp(`Comms port: +${flagPort}\\n`), 'the flag beats the variable');
  assert.match(banner, /Node: +from-the-file/, 'REEF_CONFIG names the config file');
  assert.match(banner, /WebSocket path: +\/env\/comms/);
  assert.match(banner, /Polling on \d+ for: polling\.example\.com, second\.example\.com \(SNI\)/);
  assert.match(banner, new RegExp(`Metrics: .*; http://127\\.0\\.0\\.1:${metricsPort}/metrics \\(no credentials\\)`));
});

test('a variable with a bad value stops the server with an error naming it', async () => {
  const dir = await trackedTempDir('reef-server-env-bad-');
  const result = await runTracked(process.execPath, [REEF, 'server', 'run', '--data', join(dir, 'data')], {
    env: { ...process.env, REEF_PROXY_PROTOCOL: 'maybe', REEF_HTTPS_PORT: String(await freePort()), REEF_COMMS_PORT: String(await freePort()) },
    timeoutMs: 30_000,
  });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^error: --proxy-protocol \(REEF_PROXY_PROTOCOL\) must be true or false, not "maybe"\./m);
  const port = await runTracked(process.execPath, [REEF, 'server', 'run', '--data', join(dir, 'data')], {
    env: { ...process.env, REEF_HTTPS_PORT: 'https' },
    timeoutMs: 30_000,
  });
  assert.equal(port.code, 1);
  assert.match(port.stderr, /^error: --https-port must be a whole number from 1 to 65535, not "https"\./m);
  const metrics = await runTracked(process.execPath, [REEF, 'server', 'run', '--data', join(dir, 'data')], {
    env: { ...process.env, REEF_METRICS_LISTEN: '9464', REEF_HTTPS_PORT: String(await freePort()), REEF_COMMS_PORT: String(await freePort()) },
    timeoutMs: 30_000,
  });
  assert.equal(metrics.code, 1);
  assert.match(metrics.stderr, /^error: --metrics-listen \(REEF_METRICS_LISTEN\) must be HOST:PORT, such as 127\.0\.0\.1:9464 or \[::1\]:9464 \(got "9464"\)\./m);
});

test('admission bounds: a bad --max-event-loop-delay or REEF_MAX_HANDSHAKES_IN_FLIGHT is refused by name', async () => {
  const dir = await trackedTempDir('reef-server-env-');
  const ports = async () => ({ REEF_HTTPS_PORT: String(await freePort()), REEF_COMMS_PORT: String(await freePort()) });
  const delay = await runTracked(process.execPath, [REEF, 'server', 'run', '--data', join(dir, 'data'), '--max-event-loop-delay', '-5'], {
    env: { ...process.env, ...(await ports()) },
    timeoutMs: 30_000,
  });
  assert.equal(delay.code, 1);
  assert.match(delay.stderr, /--max-event-loop-delay \(REEF_MAX_EVENT_LOOP_DELAY\) must be a whole number from 0 \(off\) to 1000000, got "-5"/);
  const inFlight = await runTracked(process.execPath, [REEF, 'server', 'run', '--data', join(dir, 'data')], {
    env: { ...process.env, ...(await ports()), REEF_MAX_HANDSHAKES_IN_FLIGHT: 'many' },
    timeoutMs: 30_000,
  });
  assert.equal(inFlight.code, 1);
  assert.match(inFlight.stderr, /--max-handshakes-in-flight \(REEF_MAX_HANDSHAKES_IN_FLIGHT\) must be a whole number/);
});

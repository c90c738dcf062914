/**
 * `reef machines upgrade` end to end, with real processes: the single executable Tentacle
 * is built twice (this version, and one with a higher version string through
 * REEF_BUILD_VERSION), the server distributes the newer one from its downloads folder, and
 * copies of the older one run as supervised services: a polling target (TCP), a listening
 * target and a worker polling over a WebSocket. Shown here: the machines show "upgrade
 * available"; the upgrade task streams the new executable to each, each swaps it in and
 * restarts, and its run succeeds only once it answers as the new version; a script running
 * across the upgrade keeps every line; a broken new version (it answers `version` but
 * fails as an agent) is rolled back by the Tentacle itself, and the task fails saying so; a
 * Tentacle run by node from this checkout says it cannot self-upgrade.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApiClient } from '../../src/api/client.js';
import type { MachineView, TaskView } from '../../src/api/contract.js';
import { VERSION } from '../../src/version.js';
import { buildExecutable, type BuiltExecutable } from '../package/build.js';
import { runTracked } from '../support/processes.js';
import { cli, freePort, ok, sha256File, startAgent, startServer, stopAll, tempDir, waitFor, type ServerProcess } from './harness.js';

/** This version with its patch number raised by `by`: newer, whatever package.json says. */
function bump(version: string, by: number): string {
  const [major, minor, patch] = version.split(/[.+-]/).map(Number) as [number, number, number];
  return `${major}.${minor}.${patch + by}`;
}

const NEW_VERSION = bump(VERSION, 1);
const BROKEN_VERSION = `${bump(VERSION, 2)}-broken`;
const MACHINES = ['poll-1', 'listen-1', 'ws-worker-1'] as const;

describe('upgrading Tentacles from the server', () => {
  let work: string;
  let downloads: string;
  let server: ServerProcess;
  let api: ApiClient;
  let oldBuild: BuiltExecutable;
  let newBuild: BuiltExecutable;
  const root = () => join(work, 'tentacles');
  const env = () => ({ ...process.env, REEF_TENTACLE_ROOT: root(), REEF_TENTACLE_SERVICE_MODE: 'supervised', REEF_LOG_LEVEL: 'info' });
  /** Each machine runs its own copy of the executable (an upgrade replaces it). */
  const exeOf = (name: string) => join(work, 'machines', name, 'reef-tentacle');
  const instanceOf = (name: string) => name.replace(/[^A-Za-z0-9]/g, '');

  const tentacle = async (name: string, args: string[]) => {
    const result = await runTracked(exeOf(name), args, { env: env(), cwd: join(work, 'machines', name), timeoutMs: 60_000 });
    assert.equal(result.code, 0, `${name}: tentacle ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
    return result.stdout.trim();
  };

  const machine = (name: string) => api.json<MachineView>('GET', `/api/machines/${name}`);
  const task = (id: string) => api.json<TaskView>('GET', `/api/tasks/${id}`);
  const finished = (id: string, timeoutMs: number) =>
    waitFor(`task ${id} to finish`, async () => {
      const t = await task(id);
      return ['Success', 'Failed', 'Cancelled', 'TimedOut'].includes(t.state) ? t : undefined;
    }, timeoutMs);
  const logOf = async (id: string) =>
    (await api.json<{ items: Array<{ machineName?: string | null; machineId: string | null; text: string }> }>('GET', `/api/tasks/${id}/log?limit=10000`)).items;
  const tentacleLog = (name: string) => readFile(join(root(), 'instances', instanceOf(name), 'logs', 'tentacle.log'), 'utf8').catch(() => '');

  before(async () => {
    work = await tempDir('upgrade');
    downloads = join(work, 'downloads');
    await mkdir(downloads, { recursive: true });
    // One at a time: two cores, and each build takes a few seconds.
    oldBuild = await buildExecutable('x64', join(work, 'build-old'));
    newBuild = await buildExecutable('x64', join(work, 'build-new'), { REEF_BUILD_VERSION: NEW_VERSION });
    assert.equal(oldBuild.version, VERSION);
    assert.equal(newBuild.version, NEW_VERSION);
    await copyFile(newBuild.path, join(downloads, `reef-tentacle-${NEW_VERSION}-linux-x64`));

    const httpsPort = await freePort();
    const commsPort = await freePort();
    server = await startServer({ dataDir: join(work, 'server'), httpsPort, commsPort, extraArgs: ['--downloads-dir', downloads] });
    api = new ApiClient({ server: server.url, apiKey: server.adminKey!, serverThumbprint: server.thumbprint });
    const listenPort = await freePort();
    const common = ['--server', server.url, '--server-thumbprint', server.thumbprint, '--apiKey', server.adminKey!];
    const registration: Record<(typeof MACHINES)[number], string[]> = {
      'poll-1': ['register-with', ...common, '--server-comms-port', String(commsPort), '--environment', 'Upgrade', '--role', 'app', '--name', 'poll-1'],
      'listen-1': ['register-with', ...common, '--comms-style', 'TentaclePassive', '--publicHostName', '127.0.0.1', '--environment', 'Upgrade', '--role', 'app', '--name', 'listen-1'],
      'ws-worker-1': ['register-worker', ...common, '--server-web-socket', `wss://127.0.0.1:${httpsPort}/reef/comms`, '--workerpool', 'Upgraders', '--name', 'ws-worker-1'],
    };
    for (const name of MACHINES) {
      await mkdir(join(work, 'machines', name), { recursive: true });
      await copyFile(oldBuild.path, exeOf(name));
      const instance = instanceOf(name);
      await tentacle(name, ['create-instance', '--instance', instance]);
      await tentacle(name, ['new-certificate', '--instance', instance]);
      if (name === 'listen-1') await tentacle(name, ['configure', '--instance', instance, '--port', String(listenPort), '--listenIpAddress', '127.0.0.1']);
      await tentacle(name, [...registration[name], '--instance', instance]);
      await tentacle(name, ['service', '--instance', instance, '--install', '--start']);
    }
    await waitFor('the polling Tentacles to connect', async () => (await machine('poll-1')).online && (await machine('ws-worker-1')).online, 60_000);
  });

  after(async () => {
    for (const name of MACHINES) {
      await runTracked(exeOf(name), ['service', '--instance', instanceOf(name), '--stop'], { env: env(), timeoutMs: 60_000 }).catch(() => undefined);
    }
    await stopAll();
  });

  test('machines show their version and that an upgrade is available', async () => {
    const check = await cli('reef', ['tasks', 'health-check', '--machine', 'poll-1', '--machine', 'listen-1', '--machine', 'ws-worker-1', '--follow'], server.env(server.adminKey!));
    assert.equal(check.code, 0, `health-check failed:\n${check.stdout}\n${check.stderr}`);
    for (const name of MACHINES) {
      const view = await machine(name);
      assert.equal(view.tentacleVersion, VERSION, name);
      assert.equal(view.upgradeAvailable, NEW_VERSION, name);
    }
    const outdated = await ok('reef', ['machines', 'list', '--outdated'], server.env(server.adminKey!));
    for (const name of MACHINES) assert.match(outdated, new RegExp(`${name}.*${VERSION} \\(upgrade available: ${NEW_VERSION.replace(/\./g, '\\.')}\\)`));
  });

  test('polling, listening and WebSocket Tentacles upgrade and come back as the new version; a script keeps every line', async () => {
    // A script that runs across the upgrade: one line every 200 ms for 8 s.
    const script = await api.json<TaskView>('POST', '/api/tasks', {
      body: { kind: 'run-script', target: { machines: ['poll-1'] }, script: { syntax: 'bash', body: 'for i in $(seq 1 40); do echo "line $i"; sleep 0.2; done' } },
    });
    await waitFor('the script to start', async () => (await logOf(script.id)).some((l) => l.text === 'line 2'), 30_000);

    const started = Date.now();
    const upgrade = await cli('reef', ['machines', 'upgrade', '--machine', 'poll-1', '--machine', 'listen-1', '--machine', 'ws-worker-1', '--rollback-after', '1m', '--follow'], server.env(server.adminKey!));
    const seconds = (Date.now() - started) / 1000;
    assert.equal(upgrade.code, 0, `upgrade failed:\nstdout: ${upgrade.stdout}\nstderr: ${upgrade.stderr}\npoll-1 log:\n${await tentacleLog('poll-1')}`);
    for (const name of MACHINES) assert.match(upgrade.stdout, new RegExp(`\\[${name}\\] .*Tentacle ${NEW_VERSION.replace(/\./g, '\\.')} is back and answers the server`));
    process.stderr.write(`upgrade of ${MACHINES.length} Tentacles (${newBuild.bytes} bytes each) took ${seconds.toFixed(1)} s\n`);

    for (const name of MACHINES) {
      const view = await machine(name);
      assert.equal(view.tentacleVersion, NEW_VERSION, name);
      assert.equal(view.upgradeAvailable, null, name);
      assert.equal(await sha256File(exeOf(name)), newBuild.sha256, `${name} runs the new executable`);
      assert.equal(await sha256File(`${exeOf(name)}.previous`), oldBuild.sha256, `${name} keeps the previous one`);
      assert.equal(JSON.parse(await tentacle(name, ['version', '--format', 'json'])).version, NEW_VERSION);
    }
    assert.equal((await machine('ws-worker-1')).carrier, 'websocket');

    const done = await finished(script.id, 60_000);
    assert.equal(done.state, 'Success', JSON.stringify(done.machines));
    const lines = (await logOf(script.id)).filter((l) => /^line \d+$/.test(l.text)).map((l) => l.text);
    assert.deepEqual(lines, Array.from({ length: 40 }, (_, i) => `line ${i + 1}`));
  });

  test('a broken new version is rolled back by the Tentacle, and the task fails saying why', async () => {
    // Answers `version` like a Tentacle, but fails as an agent.
    const broken = join(downloads, `reef-tentacle-${BROKEN_VERSION}-linux-x64`);
    await writeFile(broken, `#!/bin/sh\nif [ "$1" = version ]; then echo '{"version":"${BROKEN_VERSION}"}'; exit 0; fi\necho "broken on purpose" >&2\nexit 3\n`, { mode: 0o755 });
    const created = await api.json<TaskView>('POST', '/api/tasks', {
      body: { kind: 'upgrade-tentacle', target: { machines: ['poll-1'] }, version: BROKEN_VERSION, rollbackAfterSeconds: 10 },
    });
    const done = await finished(created.id, 120_000);
    assert.equal(done.state, 'Failed');
    const run = done.machines!.find((m) => m.machineName === 'poll-1')!;
    assert.match(run.error ?? '', new RegExp(`Tentacle ${BROKEN_VERSION} did not reach a server within 10 s of the upgrade, so the Tentacle rolled back to ${NEW_VERSION.replace(/\./g, '\\.')}`));
    // The previous version is back, online, and runs tasks.
    assert.equal(await sha256File(exeOf('poll-1')), newBuild.sha256);
    const check = await cli('reef', ['tasks', 'health-check', '--machine', 'poll-1', '--follow'], server.env(server.adminKey!));
    assert.equal(check.code, 0, `health-check after the rollback failed:\n${check.stdout}\n${check.stderr}`);
    assert.equal((await machine('poll-1')).tentacleVersion, NEW_VERSION);
  });

  test('a Tentacle run by node (a clone or npm install) says it cannot self-upgrade', async () => {
    const nodeRoot = join(work, 'node-tentacle');
    const t = (args: string[]) => ok('tentacle', args, { REEF_TENTACLE_ROOT: nodeRoot });
    await t(['create-instance', '--instance', 'fromnode']);
    await t(['new-certificate', '--instance', 'fromnode']);
    await t(['register-with', '--instance', 'fromnode', '--server', server.url, '--server-thumbprint', server.thumbprint, '--apiKey', server.adminKey!,
      '--server-comms-port', String(server.commsPort), '--environment', 'Upgrade', '--role', 'node', '--name', 'from-node']);
    await startAgent(nodeRoot, 'fromnode');
    await waitFor('from-node to connect', async () => (await machine('from-node')).online, 60_000);
    const created = await api.json<TaskView>('POST', '/api/tasks', { body: { kind: 'upgrade-tentacle', target: { machines: ['from-node'] } } });
    const done = await finished(created.id, 60_000);
    assert.equal(done.state, 'Failed');
    assert.match(done.machines![0]!.error ?? '', /cannot self-upgrade: it runs from a Node\.js installation/);
  });
});

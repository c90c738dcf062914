/**
 * The single executable Tentacle (`npm run package:tentacle`) as a machine gets it: built
 * here, copied alone into an empty folder, run with an environment whose PATH holds no
 * node (only the shell tools a script runs with), registered with a real server started
 * from bin/reef.js, running as a supervised service (the executable starts itself again as
 * supervisor and agent) and running a script end to end; a second instance polls over a
 * WebSocket. (linux-arm64:
 * tentacle-executable-arm64.slow.test.ts.)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readlinkSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, symlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import type { MachineView } from '../../src/api/contract.js';
import { isProcessAlive } from '../../src/tentacle/pid-file.js';
import { runTracked, spawnTracked, type RunResult } from '../support/processes.js';
import { buildExecutable, type BuiltExecutable } from './build.js';
import { cli, freePort, processGone, REPO, startServer, stopAll, tempDir, waitFor, type ServerProcess } from '../e2e/harness.js';

/** The tools the Tentacle's script wrapper and a bash script need (sh, mv, bash), and nothing else. */
async function toolsOnlyPath(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const tool of ['bash', 'sh', 'mv']) {
    const target = ['/usr/bin', '/bin'].map((d) => join(d, tool)).find((p) => existsSync(p));
    assert.ok(target, `${tool} is not installed`);
    await symlink(target, join(dir, tool));
  }
  return dir;
}

describe('the single executable Tentacle', () => {
  let work: string;
  let x64: BuiltExecutable;
  let server: ServerProcess;
  let api: ApiClient;
  let exe: string;
  let env: NodeJS.ProcessEnv;
  let home: string;
  const instance = 'Sea';

  /** Runs the executable from its empty folder with the node-less environment. */
  const tentacle = (args: string[]): Promise<RunResult> => runTracked(exe, args, { env, cwd: join(exe, '..'), timeoutMs: 60_000 });
  const ok = async (args: string[]): Promise<string> => {
    const result = await tentacle(args);
    assert.equal(result.code, 0, `tentacle ${args.join(' ')} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
    return result.stdout.trim();
  };

  before(async () => {
    work = await tempDir('sea');
    const dataDir = join(work, 'server');
    // The build and the server start side by side: each takes seconds.
    [x64, server] = await Promise.all([
      buildExecutable('x64', join(work, 'out')),
      (async () => startServer({ dataDir, httpsPort: await freePort(), commsPort: await freePort(), name: 'sea-server' }))(),
    ]);
    api = new ApiClient({ server: server.url, apiKey: server.adminKey!, serverThumbprint: server.thumbprint });

    const alone = join(work, 'alone');
    await mkdir(alone);
    exe = join(alone, basename(x64.path));
    await copyFile(x64.path, exe);
    await chmod(exe, 0o755); // as after a download
    home = join(work, 'home');
    await mkdir(home);
    env = {
      PATH: await toolsOnlyPath(join(work, 'tools')),
      HOME: home,
      REEF_TENTACLE_ROOT: join(work, 'tentacle-root'),
      // No systemd here, and a test must not hand anything to it where there is one.
      REEF_TENTACLE_SERVICE_MODE: 'supervised',
      REEF_LOG_LEVEL: 'info',
    };
  });

  after(async () => {
    // The supervisor runs detached, in a session of its own, so stopAll would not reach it.
    if (exe && existsSync(exe)) await tentacle(['service', '--instance', instance, '--stop']).catch(() => undefined);
    for (const file of ['tentacle.pid', 'agent.pid']) {
      const pidFile = join(env?.REEF_TENTACLE_ROOT ?? '/nonexistent', 'instances', instance, file);
      if (!existsSync(pidFile)) continue;
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    await stopAll();
  });

  test('is built as dist/packages names it, and lies alone in its folder', async () => {
    assert.equal(basename(x64.path), `reef-tentacle-${x64.version}-linux-x64`);
    assert.equal(x64.version, JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version);
    assert.equal(x64.codeCache, true, 'the build machine\'s own architecture gets V8 code cache');
    assert.match(x64.sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(await readdir(join(exe, '..')), [basename(exe)]);
  });

  test('runs with no node on PATH and prints version, commit and platform', async () => {
    const probe = await runTracked('/bin/sh', ['-c', 'command -v node'], { env, timeoutMs: 10_000 });
    assert.notEqual(probe.code, 0, `node is reachable on the test PATH (${env.PATH}): ${probe.stdout}`);

    const text = await ok(['version']);
    assert.equal(text, `Reef Tentacle ${x64.version} (commit ${x64.commit}, Node.js v${process.versions.node}, linux-x64)`);
    const json = JSON.parse(await ok(['version', '--format', 'json'])) as Record<string, string>;
    assert.deepEqual(json, { version: x64.version, commit: x64.commit, node: process.version, platform: 'linux', arch: 'x64' });
  });

  test('registers with the server, runs as a supervised service started by itself, and runs a script', async () => {
    await ok(['create-instance', '--instance', instance]);
    await ok(['new-certificate', '--instance', instance]);
    await ok(['register-with', '--instance', instance, '--server', server.url, '--server-thumbprint', server.thumbprint, '--apiKey', server.adminKey!,
      '--server-comms-port', String(server.commsPort), '--environment', 'Sea', '--role', 'single-file', '--name', 'sea-x64']);
    await ok(['service', '--instance', instance, '--install', '--start']);

    const instanceHome = join(env.REEF_TENTACLE_ROOT!, 'instances', instance);
    const supervisor = Number(readFileSync(join(instanceHome, 'tentacle.pid'), 'utf8').trim());
    const agent = await waitFor('the supervisor to start the agent', async () => {
      const file = join(instanceHome, 'agent.pid');
      return existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : undefined;
    });
    // Both are the executable itself (tentacleCommand), not a node from somewhere.
    for (const [role, pid] of [['supervisor', supervisor], ['agent', agent]] as const) {
      assert.equal(readlinkSync(`/proc/${pid}/exe`), exe, `the ${role} runs the executable`);
    }
    assert.deepEqual(readFileSync(`/proc/${agent}/cmdline`, 'utf8').split('\0').slice(1, 4), ['agent', '--instance', instance]);

    const machine = await waitFor('sea-x64 to connect', async () => {
      const view = await api.json<MachineView>('GET', '/api/machines/sea-x64');
      return view.online ? view : undefined;
    }, 60_000);
    assert.equal(machine.tentacleVersion, x64.version);

    const script = 'echo "hello from bash $BASH_VERSION"; if command -v node >/dev/null; then echo "node: $(command -v node)"; else echo "node: none"; fi';
    const run = await cli('reef', ['tasks', 'run-script', '--machine', 'sea-x64', '--script', script, '--follow'], server.env(server.adminKey!));
    assert.equal(run.code, 0, `run-script failed:\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
    assert.match(run.stdout, /\[sea-x64\] hello from bash \d/);
    assert.match(run.stdout, /\[sea-x64\] node: none/);

    await ok(['service', '--instance', instance, '--stop']);
    await waitFor('the supervisor and agent to exit', async () => processGone(supervisor) && processGone(agent), 30_000);
    assert.equal(isProcessAlive(supervisor), false);
  });

  test('polls over a WebSocket too (ws does without its optional native modules)', async () => {
    await ok(['create-instance', '--instance', 'SeaWs']);
    await ok(['new-certificate', '--instance', 'SeaWs']);
    await ok(['register-with', '--instance', 'SeaWs', '--server', server.url, '--server-thumbprint', server.thumbprint, '--apiKey', server.adminKey!,
      '--server-web-socket', `wss://127.0.0.1:${server.httpsPort}/reef/comms`, '--environment', 'Sea', '--role', 'websocket', '--name', 'sea-ws']);
    const agent = spawnTracked(exe, ['agent', '--instance', 'SeaWs'], { env, cwd: join(exe, '..'), stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    agent.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
    await waitFor('sea-ws to connect', async () => (await api.json<MachineView>('GET', '/api/machines/sea-ws')).online, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\nagent log:\n${log}`);
    });
    const check = await cli('reef', ['tasks', 'health-check', '--machine', 'sea-ws', '--follow'], server.env(server.adminKey!));
    assert.equal(check.code, 0, `health-check failed:\n${check.stdout}\n${check.stderr}`);
    assert.equal((await api.json<MachineView>('GET', '/api/machines/sea-ws')).carrier, 'websocket');
  });
});

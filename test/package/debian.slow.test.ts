/**
 * The Debian packages as an admin uses them, on this machine (as root): `npm run package`
 * builds them, `dpkg -i` installs both, `tentacle` and `reef` answer from /usr/bin, the
 * packaged server runs as its own `reef` user on its own Node runtime, the packaged
 * Tentacle registers with it and runs a script, the units pass `systemd-analyze`; then
 * `dpkg -r` keeps settings and data, `dpkg -P` removes everything, and nothing is left.
 * Also the server tarball, unpacked anywhere, runs without npm or a node on PATH.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTracked, spawnTracked, stopProcess, type RunResult } from '../support/processes.js';
import { cli, freePort, REPO, startServer, stopAll, tempDir, waitFor, type ServerProcess } from '../e2e/harness.js';
import { ApiClient } from '../../src/api/client.js';
import type { MachineView } from '../../src/api/contract.js';

const PACKAGES = ['reef-server', 'reef-tentacle'];
const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

/** Everything the packages or their scripts may create; none of it may outlive a purge. */
const FOOTPRINT = [
  '/usr/lib/reef-server',
  '/usr/lib/reef-tentacle',
  '/usr/bin/reef',
  '/usr/bin/tentacle',
  '/usr/share/doc/reef-server',
  '/usr/share/doc/reef-tentacle',
  '/lib/systemd/system/reef-server.service',
  '/etc/reef',
  '/var/lib/reef',
  '/var/lib/reef-tentacle',
];

const run = (command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<RunResult> =>
  runTracked(command, args, { env, timeoutMs: 300_000 });

async function ok(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const result = await run(command, args, env);
  assert.equal(result.code, 0, `${command} ${args.join(' ')} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  return result.stdout;
}

const installed = async (pkg: string) => (await run('dpkg-query', ['-W', '-f=${Status}', pkg])).stdout.includes('install ok installed');
const userExists = async (name: string) => (await run('getent', ['passwd', name])).code === 0;

const skip =
  process.getuid?.() !== 0 ? 'needs root (dpkg -i)' : !existsSync('/usr/bin/dpkg-deb') ? 'needs dpkg-deb' : false;

describe('the Debian packages', { skip }, () => {
  let work: string;
  let debs: Record<string, string>;
  let tarball: string;

  before(async () => {
    for (const pkg of PACKAGES) {
      assert.equal(await installed(pkg), false, `${pkg} is already installed on this machine; this test installs and purges it, so it will not run here`);
    }
    for (const path of FOOTPRINT) assert.equal(existsSync(path), false, `${path} exists before the test; it would be removed by the purge`);
    assert.equal(await userExists('reef'), false, 'a user "reef" exists already; the purge would remove it');
    work = await tempDir('debian');
    const out = join(work, 'packages');
    await ok(process.execPath, ['--import', 'tsx', join(REPO, 'scripts/package/package.ts'), '--arch', 'x64', '--out-dir', out]);
    debs = {
      'reef-server': join(out, `reef-server_${version}_amd64.deb`),
      'reef-tentacle': join(out, `reef-tentacle_${version}_amd64.deb`),
    };
    tarball = join(out, `reef-server-${version}-linux-x64.tar.gz`);
  });

  after(async () => {
    await stopAll();
    // Whatever happened, the machine is left as it was found.
    for (const pkg of PACKAGES) if (await installed(pkg).catch(() => false)) await run('dpkg', ['--purge', pkg]);
  });

  test('npm run package writes every package and their SHA256SUMS', async () => {
    const out = join(work, 'packages');
    const names = readdirSync(out).sort();
    for (const name of [
      `reef-server-${version}-linux-x64.tar.gz`,
      `reef-server_${version}_amd64.deb`,
      `reef-tentacle-${version}-linux-x64`,
      `reef-tentacle_${version}_amd64.deb`,
      'SHA256SUMS',
    ]) {
      assert.ok(names.includes(name), `${name} is missing from ${names.join(', ')}`);
    }
    const check = await runTracked('sha256sum', ['--strict', '-c', 'SHA256SUMS'], { cwd: out, timeoutMs: 60_000 });
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const info = await ok('dpkg-deb', ['--field', debs['reef-server']!, 'Package', 'Version', 'Architecture', 'Depends']);
    assert.match(info, /Package: reef-server\nVersion: .+\nArchitecture: amd64\nDepends: .*adduser/);
    assert.equal((await ok('dpkg-deb', ['--info', debs['reef-server']!, 'conffiles'])).trim(), '/etc/reef/server.env');
  });

  test('the server tarball runs with its own Node, no npm and no node on PATH', async () => {
    const unpacked = join(work, 'tarball');
    await mkdir(unpacked);
    await ok('tar', ['-xzf', tarball, '-C', unpacked]);
    const tools = join(work, 'tools');
    await mkdir(tools);
    for (const tool of ['sh', 'dirname', 'readlink']) await symlink(`/usr/bin/${tool}`, join(tools, tool));
    const env = { PATH: tools, HOME: work };
    assert.notEqual((await run('/usr/bin/sh', ['-c', 'command -v node'], env)).code, 0, 'node is on the test PATH');
    const reef = join(unpacked, `reef-server-${version}`, 'bin', 'reef');
    assert.match(await ok(reef, ['--help'], env), /Usage: reef/);
    const server = await startServer({
      command: [reef],
      env,
      dataDir: join(work, 'tarball-data'),
      httpsPort: await freePort(),
      commsPort: await freePort(),
      name: 'tarball-server',
    });
    const api = new ApiClient({ server: server.url, apiKey: server.adminKey!, serverThumbprint: server.thumbprint });
    assert.equal((await api.json<{ version: string }>('GET', '/api')).version, version);
    await server.kill();
  });

  describe('installed with dpkg', () => {
    let server: ServerProcess;

    test('dpkg -i installs both; the programs answer from /usr/bin; nothing is started', async () => {
      await ok('dpkg', ['-i', debs['reef-server']!, debs['reef-tentacle']!]);
      const versionLine = await ok('/usr/bin/tentacle', ['version']);
      assert.match(versionLine, new RegExp(`^Reef Tentacle ${version.replaceAll('.', '\\.')} \\(commit [0-9a-f]{40}, Node\\.js v[0-9.]+, linux-x64\\)`));
      assert.match(await ok('/usr/bin/reef', ['--help']), /Usage: reef/);
      assert.equal(lstatSync('/usr/bin/reef').isSymbolicLink(), true);
      // The system user and its folders, the settings file only root reads.
      assert.ok(await userExists('reef'));
      const data = statSync('/var/lib/reef');
      assert.equal(data.mode & 0o777, 0o700);
      assert.equal(data.uid, Number((await ok('id', ['-u', 'reef'])).trim()));
      assert.equal(statSync('/etc/reef/server.env').mode & 0o777, 0o600);
      // Nothing runs after installation.
      assert.equal((await run('pgrep', ['-f', '/usr/lib/reef-'])).code, 1, 'a Reef process started on installation');
    });

    test('the packaged unit passes systemd-analyze verify, with an exposure of at most 3.0', async () => {
      const unit = '/lib/systemd/system/reef-server.service';
      await ok('systemd-analyze', ['verify', '--man=no', unit]);
      const security = await ok('systemd-analyze', ['security', '--offline=true', unit]);
      const exposure = Number(/Overall exposure level for .*: ([0-9.]+)/.exec(security)?.[1]);
      assert.ok(exposure <= 3.0, `exposure ${exposure}`);
      assert.match(readFileSync(unit, 'utf8'), /^ExecStart=\/usr\/bin\/reef server run --data \/var\/lib\/reef$/m);
    });

    test('the packaged server runs as "reef"; the packaged Tentacle registers with it and runs a script', async () => {
      server = await startServer({
        command: ['/usr/bin/setpriv', '--reuid=reef', '--regid=reef', '--init-groups', '--inh-caps=-all', '/usr/bin/reef'],
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
        dataDir: '/var/lib/reef',
        httpsPort: await freePort(),
        commsPort: await freePort(),
        name: 'deb-server',
      });
      assert.equal(statSync('/var/lib/reef/reef.db').uid, Number((await ok('id', ['-u', 'reef'])).trim()), 'the store belongs to the reef user');
      const env: NodeJS.ProcessEnv = { ...process.env, REEF_TENTACLE_SERVICE_MODE: 'supervised' };
      delete env.REEF_TENTACLE_ROOT; // the system root, as an admin gets
      await ok('/usr/bin/tentacle', ['create-instance', '--instance', 'debtest'], env);
      assert.ok(existsSync('/etc/reef/tentacle/instances/debtest/tentacle.json'), 'configuration under /etc');
      assert.ok(existsSync('/var/lib/reef-tentacle/debtest'), 'data under /var/lib');
      await ok('/usr/bin/tentacle', ['new-certificate', '--instance', 'debtest'], env);
      await ok('/usr/bin/tentacle', ['register-with', '--instance', 'debtest', '--server', server.url, '--server-thumbprint', server.thumbprint,
        '--apiKey', server.adminKey!, '--server-comms-port', String(server.commsPort), '--environment', 'Deb', '--role', 'deb', '--name', 'deb-x64'], env);
      const unitText = await ok('/usr/bin/tentacle', ['service', '--instance', 'debtest', '--print'], env);
      assert.match(unitText, /^ExecStart=\/usr\/lib\/reef-tentacle\/tentacle agent --instance debtest$/m);
      const unitFile = join(work, 'reef-tentacle-debtest.service');
      await writeFile(unitFile, unitText);
      await ok('systemd-analyze', ['verify', '--man=no', unitFile]);

      const agent = spawnTracked('/usr/bin/tentacle', ['agent', '--instance', 'debtest'], { env });
      try {
        const api = new ApiClient({ server: server.url, apiKey: server.adminKey!, serverThumbprint: server.thumbprint });
        await waitFor('deb-x64 to connect', async () => (await api.json<MachineView>('GET', '/api/machines/deb-x64')).online || undefined, 60_000);
        const result = await cli('reef', ['tasks', 'run-script', '--machine', 'deb-x64', '--script', 'echo "from the package: $(id -un)"', '--follow'], server.env(server.adminKey!));
        assert.equal(result.code, 0, result.stdout + result.stderr);
        assert.match(result.stdout, /from the package: root/);
      } finally {
        await stopProcess(agent);
        await server.kill();
      }
    });

    test('dpkg -r keeps settings and data; dpkg -P removes everything, the user too', async () => {
      await ok('dpkg', ['-r', ...PACKAGES]);
      for (const gone of ['/usr/lib/reef-server', '/usr/lib/reef-tentacle', '/usr/bin/reef', '/usr/bin/tentacle', '/lib/systemd/system/reef-server.service']) {
        assert.equal(existsSync(gone), false, `${gone} outlived dpkg -r`);
      }
      for (const kept of ['/etc/reef/server.env', '/var/lib/reef/reef.db', '/etc/reef/tentacle/instances/debtest/tentacle.json']) {
        assert.ok(existsSync(kept), `${kept} was removed by dpkg -r (only a purge removes it)`);
      }
      await ok('dpkg', ['-P', ...PACKAGES]);
      for (const path of FOOTPRINT) assert.equal(existsSync(path), false, `${path} outlived the purge`);
      assert.equal(await userExists('reef'), false, 'the reef user outlived the purge');
      assert.equal((await run('getent', ['group', 'reef'])).code, 2, 'the reef group outlived the purge');
      for (const pkg of PACKAGES) assert.equal(await installed(pkg), false);
    });
  });
});

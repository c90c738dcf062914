/**
 * Both systemd units started for real, by systemd, in a booted Debian bookworm container
 * (test/support/nspawn.ts): `reef server service --install` and `tentacle service --install`
 * as an administrator would run them, then a deployment through the Tentacle that does what
 * deployments do (installs a package with a setuid file and a maintainer script that adds
 * an account and starts a service, writes under /etc and /opt), and a Tentacle restart in
 * the middle of a script. The Tentacle's paths and its node need every kind of escaping
 * (spaces, %, $, quotes), so systemd's reading of the unit is checked as well.
 */
import assert from 'node:assert/strict';
import { realpathSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO } from './harness.js';
import { Container, debianTree, nspawnUnavailable } from '../support/nspawn.js';
import { runTracked, stopAll, trackedTempDir } from '../support/processes.js';

const unavailable = nspawnUnavailable();

/**
 * Where the checkout appears inside the container: a folder no unit hides, wherever the
 * checkout is on the host (the server's unit hides /tmp and /home, where clones often are).
 */
const CHECKOUT = '/opt/reef-checkout';
const REEF = join(CHECKOUT, 'bin/reef.js');
const TENTACLE = join(CHECKOUT, 'bin/tentacle.js');
/** The Tentacle's instances root and its own copy of node, inside the container. */
const ROOT = '/srv/reef "tentacle" 100% $HOME';
const ODD_NODE = '/opt/node 50% $PATH/node';
const SERVER = 'https://127.0.0.1:8443';

/** A package as deployments install them: a setuid file, a config file, a maintainer script that adds an account and starts a service. */
async function buildProbePackage(dir: string): Promise<string> {
  const root = join(dir, 'reef-probe');
  await mkdir(join(root, 'DEBIAN'), { recursive: true });
  await mkdir(join(root, 'opt/reef-probe'), { recursive: true });
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(root, 'lib/systemd/system'), { recursive: true });
  await writeFile(
    join(root, 'DEBIAN/control'),
    'Package: reef-probe\nVersion: 1.0\nArchitecture: all\nMaintainer: Reef tests <tests@reef.invalid>\nDescription: what a deployment installs\n',
  );
  await writeFile(
    join(root, 'DEBIAN/postinst'),
    '#!/bin/sh\nset -e\ngetent passwd reefprobe >/dev/null || useradd --system --no-create-home reefprobe\nsystemctl daemon-reload\nsystemctl enable --now reef-probe.service\n',
  );
  await chmod(join(root, 'DEBIAN/postinst'), 0o755);
  await writeFile(join(root, 'opt/reef-probe/helper'), '#!/bin/sh\necho helper\n');
  await chmod(join(root, 'opt/reef-probe/helper'), 0o4755);
  await writeFile(join(root, 'etc/reef-probe.conf'), 'probe=1\n');
  await writeFile(join(root, 'lib/systemd/system/reef-probe.service'), '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n');
  const deb = join(dir, 'reef-probe.deb');
  const built = await runTracked('dpkg-deb', ['--root-owner-group', '--build', root, deb], { timeoutMs: 60_000 });
  assert.equal(built.code, 0, built.stderr);
  return deb;
}

describe('service units under a booted systemd', { skip: unavailable }, () => {
  let box: Container;
  let adminEnv: Record<string, string>;

  const reef = (args: string[], env: Record<string, string> = {}) => box.ok(['node', REEF, ...args], { env });
  const tentacle = (args: string[]) => box.ok([ODD_NODE, TENTACLE, ...args], { env: { REEF_TENTACLE_ROOT: ROOT } });
  const show = async (unit: string, property: string) => (await box.ok(['systemctl', 'show', '--value', '-p', property, unit])).trim();
  const journal = (unit: string) => box.ok(['journalctl', '--no-pager', '-o', 'cat', '-u', unit]);
  async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(500);
    }
  }

  before(async () => {
    const share = await trackedTempDir('reef-units-share-');
    await buildProbePackage(share);
    box = await Container.boot({
      tree: await debianTree(),
      readOnly: [process.execPath],
      shares: { [REPO]: CHECKOUT, [realpathSync(join(REPO, 'node_modules'))]: join(CHECKOUT, 'node_modules'), [share]: '/reef-test' },
    });
    // The Tentacle runs from a node whose path needs quoting and escaping in ExecStart.
    await box.ok(['mkdir', '-p', ODD_NODE.slice(0, ODD_NODE.lastIndexOf('/'))]);
    await box.ok(['cp', process.execPath, ODD_NODE]);
  });

  after(async () => {
    await box?.shutdown();
    await stopAll();
  });

  test('reef server service --install: an account of its own, a unit systemd starts, the first-run key in the journal', async () => {
    const installed = await box.run(['node', REEF, 'server', 'service', '--install']);
    assert.equal(installed.code, 0, installed.stderr);
    assert.match(installed.stderr, /Created the system account "reef"/);
    assert.match(installed.stderr, /Wrote the settings file \/etc\/reef\/server\.env/);
    assert.equal((await box.ok(['stat', '-c', '%a %U', '/etc/reef/server.env'])).trim(), '600 root');
    assert.equal(await box.ok(['systemd-analyze', 'verify', '--man=no', '/etc/systemd/system/reef-server.service']), '');
    assert.equal(await show('reef-server.service', 'UnitFileState'), 'enabled');
    assert.equal(await show('reef-server.service', 'ActiveState'), 'inactive', '--install does not start it');

    await box.ok(['sh', '-c', 'echo REEF_POLLING_HOSTNAMES=polling.example.com >> /etc/reef/server.env']);
    await box.ok(['systemctl', 'start', 'reef-server.service']);
    const banner = await until('the server banner in the journal', async () => {
      const text = await journal('reef-server.service');
      if (/Stop it with Ctrl\+C/.test(text)) return text;
      assert.notEqual(await show('reef-server.service', 'ActiveState'), 'failed', text);
      return undefined;
    }, 120_000);
    assert.match(banner, /Polling on 8443 for: polling\.example\.com/, 'the settings file reached the server');
    const pid = await show('reef-server.service', 'MainPID');
    const status = await box.ok(['cat', `/proc/${pid}/status`]);
    const reefUid = (await box.ok(['id', '-u', 'reef'])).trim();
    assert.match(status, new RegExp(`^Uid:\\s+${reefUid}\\s`, 'm'), 'runs as "reef"');
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    assert.match(status, /^CapEff:\s+0000000000000400$/m, 'CAP_NET_BIND_SERVICE only');
    assert.equal((await box.ok(['stat', '-c', '%a %U', '/var/lib/reef'])).trim(), '700 reef');
    // systemctl reload reaches the server (ExecReload, through the shell's kill): with no CA
    // certificate configured it says there is nothing to reload, and the same process runs on.
    await box.ok(['systemctl', 'reload', 'reef-server.service']);
    await until('the reload in the journal', async () => (/which is not reloaded/.test(await journal('reef-server.service')) ? true : undefined), 30_000);
    assert.equal(await show('reef-server.service', 'MainPID'), pid, 'the same process after systemctl reload');
    assert.equal(await show('reef-server.service', 'ActiveState'), 'active');

    const key = /Admin API key \(shown only this once\): (API-\S+)/.exec(banner)?.[1];
    assert.ok(key, banner);
    const thumbprint = (await reef(['server', 'show-thumbprint', '--data', '/var/lib/reef'])).trim();
    adminEnv = { REEF_SERVER: SERVER, REEF_API_KEY: key, REEF_SERVER_THUMBPRINT: thumbprint };
    await tentacle(['create-instance', '--instance', 'Box']);
    await tentacle(['new-certificate', '--instance', 'Box', '--if-blank']);
    await tentacle([
      'register-with', '--instance', 'Box', '--server', SERVER, '--server-thumbprint', thumbprint, '--apiKey', key,
      '--comms-style', 'TentacleActive', '--server-comms-port', '10943', '--environment', 'Test', '--role', 'box', '--name', 'box',
    ]);
  });

  test('tentacle service --install: systemd reads the escaped paths as they are and keeps the agent running', async () => {
    const printed = await tentacle(['service', '--instance', 'Box', '--print']);
    assert.equal(await box.ok(['ls', '/etc/systemd/system']).then((l) => l.includes('reef-tentacle-Box')), false, '--print installs nothing');
    const done = await box.run([ODD_NODE, TENTACLE, 'service', '--instance', 'Box', '--install', '--start'], { env: { REEF_TENTACLE_ROOT: ROOT } });
    assert.equal(done.code, 0, done.stderr);
    assert.equal(await box.ok(['cat', '/etc/systemd/system/reef-tentacle-Box.service']), printed);
    assert.equal(await box.ok(['systemd-analyze', 'verify', '--man=no', '/etc/systemd/system/reef-tentacle-Box.service']), '');
    const exec = await show('reef-tentacle-Box.service', 'ExecStart');
    assert.ok(exec.includes(`path=${ODD_NODE} ; argv[]=${ODD_NODE} ${TENTACLE} agent --instance Box ;`), exec);
    assert.equal(await show('reef-tentacle-Box.service', 'WorkingDirectory'), `${ROOT}/instances/Box`);
    const pid = await show('reef-tentacle-Box.service', 'MainPID');
    // What the agent really got (systemctl show prints Environment= escaped again).
    const environ = await box.ok(['cat', `/proc/${pid}/environ`]);
    assert.ok(environ.split('\0').includes(`REEF_TENTACLE_ROOT=${ROOT}`), environ);
    assert.equal(await box.ok(['readlink', `/proc/${pid}/cwd`]), `${ROOT}/instances/Box\n`);
  });

  test('a deployment through the Tentacle installs a package, writes /etc and /opt and starts a service', async () => {
    const script = [
      'set -e',
      'dpkg -i /reef-test/reef-probe.deb',
      'echo "helper mode $(stat -c %a /opt/reef-probe/helper)"',
      'echo "probe service $(systemctl is-active reef-probe.service)"',
      'getent passwd reefprobe >/dev/null && echo "account reefprobe"',
      'mkdir -p /opt/app/releases/1 && echo "app dir $(stat -c %a /opt/app/releases/1)"',
      'echo "listen 8080" > /etc/app.conf && echo "config $(stat -c %a /etc/app.conf)"',
      'echo "running as $(id -un)"',
    ].join('\n');
    const out = await reef(['tasks', 'run-script', '--environment', 'Test', '--role', 'box', '--follow', '--script', script], adminEnv);
    assert.match(out, /\[box\] helper mode 4755/, 'setuid files survive (no RestrictSUIDSGID)');
    assert.match(out, /\[box\] probe service active/, 'a maintainer script started a service');
    assert.match(out, /\[box\] account reefprobe/);
    assert.match(out, /\[box\] app dir 755/, 'UMask 0022, as an administrator gets');
    assert.match(out, /\[box\] config 644/);
    assert.match(out, /\[box\] running as root/);
    assert.equal(await box.ok(['cat', '/etc/app.conf']), 'listen 8080\n');
  });

  test('a script keeps running across a restart of the Tentacle unit, and its whole log arrives', async () => {
    const id = (await reef(['tasks', 'run-script', '--environment', 'Test', '--role', 'box', '--script', 'echo before; sleep 10; echo after'], adminEnv)).trim();
    // Its output file in the Tentacle's workspace says it runs.
    const outputs = ['sh', '-c', 'cat "$1"/*/stdout.log 2>/dev/null || true', 'sh', `${ROOT}/instances/Box/workspace`];
    await until('the script to start', async () => ((await box.ok(outputs)).includes('before') ? true : undefined), 60_000);
    const oldPid = await show('reef-tentacle-Box.service', 'MainPID');
    await box.ok(['systemctl', 'restart', 'reef-tentacle-Box.service']);
    assert.notEqual(await show('reef-tentacle-Box.service', 'MainPID'), oldPid);
    const watched = await box.run(['node', REEF, 'tasks', 'watch', id], { env: adminEnv, timeoutMs: 120_000 });
    assert.equal(watched.code, 0, `${watched.stdout}\n${watched.stderr}`);
    assert.match(watched.stdout, /\[box\] before\n(.*\n)*\[box\] after/);
  });

  test('--uninstall stops and removes both units', async () => {
    await tentacle(['service', '--instance', 'Box', '--uninstall']);
    await box.run(['systemctl', 'stop', 'reef-probe.service']);
    const removed = await box.run(['node', REEF, 'server', 'service', '--uninstall']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stderr, /Stopped, disabled and removed reef-server\.service/);
    const units = await box.ok(['ls', '/etc/systemd/system']);
    assert.doesNotMatch(units, /reef-(server|tentacle)/);
    assert.equal(await show('reef-server.service', 'ActiveState'), 'inactive');
    assert.equal((await box.ok(['stat', '-c', '%U', '/var/lib/reef'])).trim(), 'reef', 'the data is kept');
  });
});

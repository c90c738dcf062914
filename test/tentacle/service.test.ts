import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { defaultConfig } from '../../src/tentacle/config.js';
import { isProcessAlive } from '../../src/tentacle/pid-file.js';
import { tentacleCommand } from '../../src/tentacle/paths.js';
import { detectServiceManager, runServiceActions } from '../../src/tentacle/service.js';
import { renderTentacleUnit, tentacleUnitName } from '../../src/tentacle/service-unit.js';
import { DEFAULT_RESTART_POLICY, restartDelay } from '../../src/tentacle/supervisor.js';
import { tentacleCli, type TentacleCli } from '../cli/tentacle-cli.js';
import { trackedTempDir } from '../support/processes.js';
import { unitSecurity, verifyUnits, writeUnits } from '../support/systemd.js';

/** Stands in for `tentacle agent`: says hello, records its pid, crashes once if asked, exits 0 on SIGTERM. */
const FAKE_AGENT = `
import { existsSync, writeFileSync } from 'node:fs';
const { FAKE_DIR, FAKE_CRASH_ONCE } = process.env;
writeFileSync(FAKE_DIR + '/agent.pid', String(process.pid));
console.log('fake agent up ' + process.pid + ' instance=' + process.env.REEF_TENTACLE_INSTANCE);
if (FAKE_CRASH_ONCE && !existsSync(FAKE_DIR + '/crashed')) {
  writeFileSync(FAKE_DIR + '/crashed', '');
  console.error('fake agent crashing');
  process.exit(3);
}
process.on('SIGTERM', () => { console.log('fake agent got SIGTERM'); process.exit(0); });
setInterval(() => {}, 1000);
`;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const readText = (path: string) => readFile(path, 'utf8').catch(() => '');
const count = (text: string, needle: string) => text.split(needle).length - 1;

describe('supervised service (no systemd)', () => {
  let cli: TentacleCli;
  let home: string;
  let env: NodeJS.ProcessEnv;
  const started: number[] = [];

  before(async () => {
    cli = await tentacleCli();
    await cli.ok(['create-instance', '--instance', 'Svc']);
    home = join(cli.root, 'instances', 'Svc');
    const agentFile = join(cli.root, 'fake-agent.mjs');
    await writeFile(agentFile, FAKE_AGENT);
    env = {
      REEF_TENTACLE_AGENT_CMD: JSON.stringify([process.execPath, agentFile]),
      FAKE_DIR: cli.root,
      FAKE_CRASH_ONCE: '1',
    };
  });

  after(async () => {
    await cli.run(['service', '--instance', 'Svc', '--stop'], env);
    for (const pid of started) if (isProcessAlive(pid)) process.kill(-pid, 'SIGKILL');
    await cli.close();
  });

  const pidPath = () => join(home, 'tentacle.pid');
  const logPath = () => join(home, 'logs', 'tentacle.log');
  const supervisorPid = async () => Number((await readFile(pidPath(), 'utf8')).trim());

  test('start needs install', async () => {
    const result = await cli.run(['service', '--instance', 'Svc', '--start'], env);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /^error: .*not installed.*--install/);
    const none = await cli.run(['service', '--instance', 'Svc']);
    assert.match(none.stderr, /^error: Nothing to do/);
  });

  test('install + start runs the agent under a supervisor that restarts it after a crash', async () => {
    await cli.ok(['service', '--instance', 'Svc', '--install', '--start'], env);
    const pid = await supervisorPid();
    started.push(pid);
    assert.ok(isProcessAlive(pid, 'supervise'), 'the supervisor runs');

    // First run exits 3; the supervisor starts it again after a short backoff.
    const log = await waitFor('the restarted agent', async () => {
      const text = await readText(logPath());
      return count(text, 'fake agent up') >= 2 && text;
    });
    assert.match(log, /fake agent crashing/);
    assert.match(log, /"msg":"agent exited; restarting"/);
    assert.match(log, /instance=Svc/);

    // Killed by a signal counts as a crash too.
    const agentPid = Number(await readFile(join(cli.root, 'agent.pid'), 'utf8'));
    process.kill(agentPid, 'SIGKILL');
    await waitFor('the agent after SIGKILL', async () => count(await readText(logPath()), 'fake agent up') >= 3);
    const newAgentPid = Number(await readFile(join(cli.root, 'agent.pid'), 'utf8'));
    assert.notEqual(newAgentPid, agentPid);

    const again = await cli.ok(['service', '--instance', 'Svc', '--start'], env);
    assert.match(again.stderr, /Already running/);
    assert.equal(await supervisorPid(), pid);

    // delete-instance refuses while a service exists.
    const del = await cli.run(['delete-instance', '--instance', 'Svc']);
    assert.notEqual(del.code, 0);
    assert.match(del.stderr, /^error: .*--uninstall/);

    await cli.ok(['service', '--instance', 'Svc', '--stop'], env);
    await assert.rejects(stat(pidPath()), { code: 'ENOENT' });
    assert.equal(isProcessAlive(pid), false, 'supervisor gone');
    assert.equal(isProcessAlive(newAgentPid), false, 'agent gone');
    assert.match(await readText(logPath()), /fake agent got SIGTERM/);
    assert.match((await cli.ok(['service', '--instance', 'Svc', '--stop'], env)).stderr, /Not running/);
  });

  test('restart replaces the supervisor; stale pid files are ignored', async () => {
    // A pid file naming a live process that is not a supervisor (this test runner) is stale.
    await writeFile(pidPath(), `${process.pid}\n`);
    await cli.ok(['service', '--instance', 'Svc', '--start'], env);
    const first = await supervisorPid();
    started.push(first);
    assert.notEqual(first, process.pid);

    await cli.ok(['service', '--instance', 'Svc', '--restart'], env);
    const second = await supervisorPid();
    started.push(second);
    assert.notEqual(second, first);
    assert.equal(isProcessAlive(first), false);

    await cli.ok(['service', '--instance', 'Svc', '--stop', '--uninstall'], env);
    assert.equal(isProcessAlive(second), false);
    await assert.rejects(stat(join(home, 'service.json')), { code: 'ENOENT' });

    // A pid file naming a dead process is stale as well.
    await writeFile(pidPath(), '999999999\n');
    await cli.ok(['service', '--instance', 'Svc', '--install', '--start'], env);
    const killed = await supervisorPid();
    started.push(killed);

    // A supervisor killed outright leaves its agent behind; the next start stops that agent.
    const agentPidFile = join(home, 'agent.pid');
    const orphan = await waitFor('the agent', async () => Number((await readText(agentPidFile)).trim()) || undefined);
    process.kill(killed, 'SIGKILL');
    await waitFor('the supervisor to die', () => !isProcessAlive(killed));
    assert.ok(isProcessAlive(orphan), 'the orphaned agent is still running');
    const restarted = await cli.ok(['service', '--instance', 'Svc', '--start'], env);
    started.push(await supervisorPid());
    assert.match(restarted.stderr, new RegExp(`Stopped agent process ${orphan}, left running`));
    assert.equal(isProcessAlive(orphan), false);

    await cli.ok(['service', '--instance', 'Svc', '--uninstall'], env); // uninstall stops first
    await assert.rejects(stat(pidPath()), { code: 'ENOENT' });
    await cli.ok(['delete-instance', '--instance', 'Svc']);
  });
});

describe('service internals', () => {
  test('stop kills a supervisor that ignores SIGTERM, with its process group', async () => {
    const cli = await tentacleCli();
    try {
      await cli.ok(['create-instance', '--instance', 'Stubborn']);
      const config = defaultConfig('Stubborn', join(cli.root, 'instances', 'Stubborn'));
      // "supervise" in argv makes it look like ours to the pid check.
      const stubborn = spawn(
        process.execPath,
        ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000); console.log('ready')", 'supervise'],
        { detached: true, stdio: ['ignore', 'pipe', 'ignore'] },
      );
      const stubbornExit = new Promise((resolve) => stubborn.once('exit', resolve));
      await new Promise((resolve) => stubborn.stdout!.once('data', resolve)); // its SIGTERM handler is in place
      assert.ok(isProcessAlive(stubborn.pid!, 'supervise'));
      await writeFile(join(config.home, 'tentacle.pid'), `${stubborn.pid}\n`);
      const [line] = await runServiceActions(config, { stop: true }, { manager: 'supervised', root: cli.root, stopTimeoutMs: 300 });
      assert.match(line!, /was killed/);
      await stubbornExit;
      await assert.rejects(stat(join(config.home, 'tentacle.pid')), { code: 'ENOENT' });
    } finally {
      await cli.close();
    }
  });

  test('systemd unit: what systemd reads, from tentacleCommand, with only the hardening deployments allow', () => {
    const unit = renderTentacleUnit({
      instance: 'Web-1',
      root: '/etc/reef/tentacle',
      home: '/var/lib/reef/My Home',
      command: ['/usr/bin/node', '/opt/reef/bin/tentacle.js'],
    });
    assert.equal(tentacleUnitName('Web-1'), 'reef-tentacle-Web-1.service');
    assert.throws(() => tentacleUnitName('../x'), { code: 'REEF_INVALID_ARGUMENT' });
    assert.match(unit, /^ExecStart=\/usr\/bin\/node \/opt\/reef\/bin\/tentacle\.js agent --instance Web-1$/m);
    assert.match(unit, /^Environment=REEF_TENTACLE_ROOT=\/etc\/reef\/tentacle$/m);
    // Taken literally by systemd: quotes here would make it "not absolute" (issue 14).
    assert.match(unit, /^WorkingDirectory=\/var\/lib\/reef\/My Home$/m);
    assert.match(unit, /^Restart=always$/m);
    // Scripts outlive an agent restart (the next agent adopts them), as in supervised mode.
    assert.match(unit, /^KillMode=process$/m);
    assert.match(unit, /^UMask=0022$/m);
    for (const kept of ['ProtectKernelLogs=yes', 'RestrictRealtime=yes', 'LockPersonality=yes', 'SystemCallFilter=~@obsolete']) {
      assert.match(unit, new RegExp(`^${kept}$`, 'm'));
    }
    // Each of these stops a deployment step (docs/operations.md, "Tentacle hardening").
    for (const left of ['ProtectSystem', 'ProtectHome', 'NoNewPrivileges', 'RestrictSUIDSGID', 'ProtectKernelModules', 'ProtectKernelTunables', 'ProtectClock', 'ProtectHostname', 'ProtectControlGroups', 'PrivateTmp', 'PrivateDevices']) {
      assert.doesNotMatch(unit, new RegExp(`^${left}=`, 'm'));
    }
    assert.match(unit, /^WantedBy=multi-user.target$/m);

    // The single executable Tentacle starts itself with no script argument.
    const sea = renderTentacleUnit({ instance: 'x', root: '/r', home: '/h', command: ['/usr/lib/reef-tentacle/tentacle'] });
    assert.match(sea, /^ExecStart=\/usr\/lib\/reef-tentacle\/tentacle agent --instance x$/m);
    const odd = renderTentacleUnit({ instance: 'x', root: '/r 100%', home: '/h/50% $x "q"', command: ['/n 1%/node', 'a$b'] });
    assert.match(odd, /^ExecStart="\/n 1%%\/node" "a\$\$b" agent --instance x$/m);
    assert.match(odd, /^Environment="REEF_TENTACLE_ROOT=\/r 100%%"$/m);
    assert.match(odd, /^WorkingDirectory=\/h\/50%% \$x "q"$/m);
    assert.throws(() => renderTentacleUnit({ instance: 'x', root: '/r', home: '/h/new\nline' }), {
      code: 'REEF_UNIT_VALUE',
      message: /The Tentacle's home "\/h\/new\\nline" cannot be written into a systemd unit: it contains a control character/,
    });
  });

  test('systemd unit passes systemd-analyze verify; its exposure is recorded', async (t) => {
    const dir = await trackedTempDir('reef-tentacle-unit-');
    const unit = renderTentacleUnit({ instance: 'Verify', root: dir, home: join(dir, 'instances', 'Verify') });
    assert.ok(unit.includes(`ExecStart=${[...tentacleCommand, 'agent', '--instance', 'Verify'].join(' ')}\n`), unit);
    const [path] = await writeUnits(dir, { [tentacleUnitName('Verify')]: unit });
    assert.equal(await verifyUnits([path!]), '');
    const { exposure, text } = await unitSecurity(path!);
    t.diagnostic(`systemd-analyze security --offline=true: Tentacle exposure ${exposure}`);
    // A root agent that installs software stays "UNSAFE" by systemd's measure (docs/operations.md
    // records the number); this only catches the unit losing the protections it keeps.
    assert.ok(exposure <= 9.2, text);
  });

  test('tentacle service --print shows the unit, needs no root and installs nothing', async () => {
    const cli = await tentacleCli();
    try {
      await cli.ok(['create-instance', '--instance', 'Shown']);
      const home = join(cli.root, 'instances', 'Shown');
      const printed = await cli.ok(['service', '--instance', 'Shown', '--print'], { REEF_TENTACLE_SERVICE_MODE: 'systemd' });
      assert.equal(printed.stdout, renderTentacleUnit({ instance: 'Shown', root: cli.root, home }));
      await assert.rejects(stat(join(home, 'service.json')), { code: 'ENOENT' }, 'nothing installed');
      const both = await cli.run(['service', '--instance', 'Shown', '--print', '--install']);
      assert.notEqual(both.code, 0);
      assert.match(both.stderr, /^error: --print only shows the unit/);
    } finally {
      await cli.close();
    }
  });

  test('restart backoff doubles up to the cap', () => {
    const mid = () => 0.5; // no jitter
    assert.equal(restartDelay(1, DEFAULT_RESTART_POLICY, mid), DEFAULT_RESTART_POLICY.initialDelayMs);
    assert.equal(restartDelay(2, DEFAULT_RESTART_POLICY, mid), DEFAULT_RESTART_POLICY.initialDelayMs * 2);
    assert.equal(restartDelay(50, DEFAULT_RESTART_POLICY, mid), DEFAULT_RESTART_POLICY.maxDelayMs);
    const jittered = restartDelay(3, DEFAULT_RESTART_POLICY, () => 0);
    assert.equal(jittered, DEFAULT_RESTART_POLICY.initialDelayMs * 4 * 0.8);
  });

  test('service manager detection can be overridden', () => {
    assert.equal(detectServiceManager({ REEF_TENTACLE_SERVICE_MODE: 'supervised' }), 'supervised');
    assert.equal(detectServiceManager({ REEF_TENTACLE_SERVICE_MODE: 'systemd' }), 'systemd');
    assert.throws(() => detectServiceManager({ REEF_TENTACLE_SERVICE_MODE: 'upstart' }), { code: 'REEF_CONFIG_INVALID' });
  });
});

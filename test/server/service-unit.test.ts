import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { reefCommand } from '../../src/cli/reef-bin.js';
import { serverEnvironmentTemplate } from '../../src/cli/reef-server.js';
import { renderServerUnit, SERVER_SERVICE_DEFAULTS, SERVER_UNIT_NAME } from '../../src/server/service-unit.js';
import { systemdIsRunning } from '../../src/systemd/systemctl.js';
import { REEF_BIN } from '../support/built.js';
import { runTracked, stopAll, trackedTempDir } from '../support/processes.js';
import { unitSecurity, verifyUnits, writeUnits } from '../support/systemd.js';

after(stopAll);

const REEF = REEF_BIN;
const reef = (args: string[]) => runTracked(process.execPath, [REEF, ...args], { env: { ...process.env, REEF_DEBUG: '' }, timeoutMs: 30_000 });

test('the packaged server unit: /usr/bin/reef as "reef", data in /var/lib/reef, settings from /etc/reef/server.env', () => {
  const unit = renderServerUnit({ command: ['/usr/bin/reef'], ...SERVER_SERVICE_DEFAULTS });
  assert.match(unit, /^ExecStart=\/usr\/bin\/reef server run --data \/var\/lib\/reef$/m);
  assert.match(unit, /^User=reef$/m);
  assert.match(unit, /^Group=reef$/m);
  assert.match(unit, /^StateDirectory=reef$/m);
  assert.match(unit, /^StateDirectoryMode=0700$/m);
  assert.match(unit, /^WorkingDirectory=\/var\/lib\/reef$/m);
  assert.match(unit, /^EnvironmentFile=-\/etc\/reef\/server.env$/m);
  assert.match(unit, /^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m);
  assert.match(unit, /^ProtectSystem=strict$/m);
  assert.doesNotMatch(unit, /^ReadWritePaths=/m);
});

test('a data directory outside /var/lib is made writable with ReadWritePaths; unusable ones are refused', () => {
  const unit = renderServerUnit({ command: ['/usr/bin/reef'], user: 'reef-srv', dataDir: '/srv/reef data', environmentFile: '/etc/reef/server.env' });
  assert.match(unit, /^ReadWritePaths="\/srv\/reef data"$/m);
  assert.match(unit, /^WorkingDirectory=\/srv\/reef data$/m);
  assert.match(unit, /^ExecStart=\/usr\/bin\/reef server run --data "\/srv\/reef data"$/m);
  assert.doesNotMatch(unit, /^StateDirectory=/m);
  const spec = { command: ['/usr/bin/reef'], ...SERVER_SERVICE_DEFAULTS };
  assert.throws(() => renderServerUnit({ ...spec, user: 'root' }), { code: 'REEF_INVALID_ARGUMENT', message: /does not run as root/ });
  assert.throws(() => renderServerUnit({ ...spec, user: 'Bad User' }), { code: 'REEF_INVALID_ARGUMENT' });
  assert.throws(() => renderServerUnit({ ...spec, dataDir: '/home/me/reef' }), { code: 'REEF_INVALID_ARGUMENT', message: /hides \/home .*ProtectHome/ });
  assert.throws(() => renderServerUnit({ ...spec, dataDir: '/tmp/reef' }), { code: 'REEF_INVALID_ARGUMENT', message: /hides \/tmp/ });
  assert.throws(() => renderServerUnit({ ...spec, dataDir: '/srv/a\nb' }), { code: 'REEF_UNIT_VALUE', message: /control character/ });
  assert.throws(() => renderServerUnit({ ...spec, environmentFile: 'server.env' }), { code: 'REEF_UNIT_VALUE', message: /absolute/ });
});

test('the server unit passes systemd-analyze verify, and its exposure is at most 3.0', async (t) => {
  const dir = await trackedTempDir('reef-server-unit-');
  const units = {
    [SERVER_UNIT_NAME]: renderServerUnit({ command: reefCommand, ...SERVER_SERVICE_DEFAULTS }),
    'reef-server-srv.service': renderServerUnit({ command: reefCommand, user: 'reef', dataDir: '/srv/reef data', environmentFile: '/etc/reef/server.env' }),
  };
  const paths = await writeUnits(dir, units);
  assert.equal(await verifyUnits(paths), '');
  const { exposure, text } = await unitSecurity(paths[0]!);
  t.diagnostic(`systemd-analyze security --offline=true: server exposure ${exposure}`);
  assert.ok(exposure <= 3.0, `exposure ${exposure} is above 3.0:\n${text}`);
});

test('reef server service --print shows the unit of this installation and needs no root', async () => {
  const printed = await reef(['server', 'service', '--print']);
  assert.equal(printed.code, 0, printed.stderr);
  assert.equal(printed.stdout, renderServerUnit({ command: reefCommand, ...SERVER_SERVICE_DEFAULTS }));
  const custom = await reef(['server', 'service', '--print', '--user', 'deploy', '--data', '/srv/reef', '--environment-file', '/etc/reef/other.env']);
  assert.equal(custom.code, 0, custom.stderr);
  assert.match(custom.stdout, /^User=deploy$/m);
  assert.match(custom.stdout, /^ReadWritePaths=\/srv\/reef$/m);
  assert.match(custom.stdout, /^EnvironmentFile=-\/etc\/reef\/other.env$/m);
  const none = await reef(['server', 'service']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^error: Pass exactly one of --install, --uninstall or --print\./);
});

test('reef server service --install refuses, and changes nothing, where systemd is not running', { skip: systemdIsRunning() && 'systemd runs here: --install would really install' }, async () => {
  const dir = await trackedTempDir('reef-server-install-');
  const envFile = join(dir, 'server.env');
  const dataDir = `/srv/reef-test-never-created-${process.pid}`; // not under /tmp, which the unit hides from the server
  const result = await reef(['server', 'service', '--install', '--user', 'reef-test-nouser', '--data', dataDir, '--environment-file', envFile]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, process.getuid?.() === 0 ? /^error: systemd is not running on this machine .*--print/ : /^error: Installing the Reef server service needs root/);
  await assert.rejects(stat(envFile), { code: 'ENOENT' });
  await assert.rejects(stat(dataDir), { code: 'ENOENT' });
  const user = await runTracked('getent', ['passwd', 'reef-test-nouser'], { timeoutMs: 10_000 });
  assert.equal(user.code, 2, 'no account was created');
});

test('the settings file lists every variable "reef server run" honours, all commented out', async () => {
  const template = serverEnvironmentTemplate();
  const help = await reef(['server', 'run', '--help']);
  const variables = [...help.stdout.matchAll(/env:\s+(REEF_[A-Z_]+)/g)].map((m) => m[1]).filter((name) => name !== 'REEF_HOME');
  assert.ok(variables.length >= 12, help.stdout);
  assert.doesNotMatch(template, /REEF_HOME/, 'the unit sets the data directory with --data');
  for (const name of [...variables, 'REEF_LOG_LEVEL']) assert.match(template, new RegExp(`^#${name}=`, 'm'));
  for (const line of template.split('\n')) assert.ok(line === '' || line.startsWith('#'), `not a comment: ${line}`);
});

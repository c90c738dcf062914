import assert from 'node:assert/strict';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { renderUnitFile, unitCommandLine, unitEnvironment, unitPathValue, unitPathWord } from '../../src/systemd/unit-syntax.js';
import { stopAll, trackedTempDir } from '../support/processes.js';
import { verifyUnits, writeUnits } from '../support/systemd.js';

after(stopAll);

test('ExecStart: arguments quoted only when needed, with \\ " % and $ escaped the way systemd reads them', () => {
  assert.equal(unitCommandLine(['/usr/bin/node', '/opt/reef/bin/tentacle.js', 'agent', '--instance', 'Web-1'], 'x'), '/usr/bin/node /opt/reef/bin/tentacle.js agent --instance Web-1');
  // What systemd 252 turned these into (systemctl show -p ExecStart, and the argv the program got):
  // "a b" -> a b, "$$HOME" -> $HOME, "%%i" -> %i, ";" -> ; (not a command separator), "" -> empty,
  // "c\\d" -> c\d, "q\"q" -> q"q.
  assert.equal(
    unitCommandLine(['/usr/bin/node', 'a b', '$HOME', '%i', ';', '', 'c\\d', 'q"q', "s'q", '100%', 'plain'], 'x'),
    '/usr/bin/node "a b" "$$HOME" %%i ";" "" "c\\\\d" "q\\"q" "s\'q" 100%% plain',
  );
  // The executable: systemd expands no $ in it, only % specifiers.
  assert.equal(unitCommandLine(['/opt/50% off/$dir/node', '-v'], 'x'), '"/opt/50%% off/$dir/node" -v');
});

test('ExecStart: what systemd cannot take is refused with a clear error', () => {
  assert.throws(() => unitCommandLine([], 'the Tentacle command'), { code: 'REEF_UNIT_VALUE', message: /the Tentacle command is empty/ });
  assert.throws(() => unitCommandLine(['node', 'x'], 'the Tentacle command'), { code: 'REEF_UNIT_VALUE', message: /must be an absolute path/ });
  assert.throws(() => unitCommandLine(['/opt/"q"/node'], 'the Tentacle command'), { code: 'REEF_UNIT_VALUE', message: /quote or backslash/ });
  assert.throws(() => unitCommandLine(['/opt/a\\b/node'], 'the Tentacle command'), { code: 'REEF_UNIT_VALUE', message: /quote or backslash/ });
  assert.throws(() => unitCommandLine(['/opt/new\nline/node'], 'the Tentacle command'), { code: 'REEF_UNIT_VALUE', message: /control character/ });
  assert.throws(() => unitCommandLine(['/usr/bin/node', 'two\nlines'], 'the Tentacle command'), { code: 'REEF_UNIT_VALUE', message: /An argument of the Tentacle command .* control character/ });
  assert.throws(() => unitCommandLine(['/usr/bin/node', 'bad \ud800 utf'], 'x'), { code: 'REEF_UNIT_VALUE', message: /not valid UTF-8/ });
});

test('paths taken literally (WorkingDirectory=) are not quoted; only % is escaped', () => {
  assert.equal(unitPathValue('/var/lib/reef/My Home', 'The home'), '/var/lib/reef/My Home');
  assert.equal(unitPathValue('/srv/50% "q" $x \\b', 'The home'), '/srv/50%% "q" $x \\b');
  assert.throws(() => unitPathValue('relative/dir', 'The home'), { code: 'REEF_UNIT_VALUE', message: /The home "relative\/dir" must be an absolute path/ });
  assert.throws(() => unitPathValue('/srv/a/../b', 'The home'), { code: 'REEF_UNIT_VALUE', message: /normalized path .* use \/srv\/b/ });
  assert.throws(() => unitPathValue('/srv/a/', 'The home'), { code: 'REEF_UNIT_VALUE', message: /normalized/ });
  assert.throws(() => unitPathValue('/srv/trailing ', 'The home'), { code: 'REEF_UNIT_VALUE', message: /ends with whitespace or a backslash/ });
  assert.throws(() => unitPathValue('/srv/back\\', 'The home'), { code: 'REEF_UNIT_VALUE', message: /ends with whitespace or a backslash/ });
  assert.throws(() => unitPathValue('/srv/a\nb', 'The home'), { code: 'REEF_UNIT_VALUE', message: /The home "\/srv\/a\\nb" cannot be written into a systemd unit: it contains a control character/ });
  assert.throws(() => unitPathValue('/srv/a\rb', 'The home'), { code: 'REEF_UNIT_VALUE' });
});

test('Environment= and path lists: quoted words where $ stays literal', () => {
  assert.equal(unitEnvironment('REEF_TENTACLE_ROOT', '/etc/reef/tentacle'), 'REEF_TENTACLE_ROOT=/etc/reef/tentacle');
  assert.equal(unitEnvironment('R', '/srv/a b/50%/$x/"q"\\'), '"R=/srv/a b/50%%/$x/\\"q\\"\\\\"');
  assert.throws(() => unitEnvironment('1BAD', 'x'), { code: 'REEF_UNIT_VALUE' });
  assert.throws(() => unitEnvironment('R', 'a\nb'), { code: 'REEF_UNIT_VALUE', message: /The value of R/ });
  assert.equal(unitPathWord('/srv/reef data', 'd'), '"/srv/reef data"');
  assert.equal(unitPathWord('/srv/reef', 'd'), '/srv/reef');
});

test('systemd-analyze verify finds the program of a unit whose paths need every kind of escaping', async () => {
  const dir = await trackedTempDir('reef-unit-syntax-');
  // verify fails when ExecStart's program does not exist, so a wrongly quoted path shows up.
  const odd = join(dir, 'node dir 100%h $HOME');
  await mkdir(odd);
  await symlink(process.execPath, join(odd, 'node'));
  const home = join(dir, 'home "q" 50% $x \\b');
  await mkdir(home);
  const unit = renderUnitFile(
    ['test'],
    [
      [
        'Service',
        [
          ['ExecStart', unitCommandLine([join(odd, 'node'), '-e', 'console.log("$HOME 100%")', 'a b'], 'test')],
          ['Environment', unitEnvironment('X', '/a b/$y/%/"q"')],
          ['WorkingDirectory', unitPathValue(home, 'home')],
          ['ReadWritePaths', unitPathWord(home, 'home')],
        ],
      ],
    ],
  );
  const [path] = await writeUnits(dir, { 'reef-syntax-test.service': unit });
  assert.equal(await verifyUnits([path!]), '', unit);
  // And the check bites: the same unit with the program's % not escaped (%h is the home
  // folder's specifier), or without its quotes.
  const [unescaped, unquoted] = await writeUnits(dir, {
    'reef-syntax-unescaped.service': unit.replace('%%h', '%h'),
    'reef-syntax-unquoted.service': unit.replace(/^ExecStart="([^"]*)"/m, 'ExecStart=$1'),
  });
  assert.match(await verifyUnits([unescaped!]), /is not executable: No such file/);
  assert.match(await verifyUnits([unquoted!]), /is not executable: No such file/);
});

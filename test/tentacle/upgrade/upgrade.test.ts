/**
 * The Tentacle's self-upgrade without a server: staging (resumable, SHA-256 checked), the
 * check that the new file runs and reports the version asked for, the swap that keeps the
 * previous executable, the confirmation by the new version, and the watcher's rollback.
 * Shell scripts stand in for executables: they answer `version --format json` like one.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { ReefError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/logging.js';
import { UpgradeService } from '../../../src/tentacle/upgrade/service.js';
import { readUpgradeState, upgradeStatePath, writeUpgradeState } from '../../../src/tentacle/upgrade/state.js';
import { previousPath, stagedPath } from '../../../src/tentacle/upgrade/swap.js';
import { watchUpgrade } from '../../../src/tentacle/upgrade/watch.js';

/** A stand-in executable: `version --format json` reports `version`; anything else prints `says`. */
function fakeExecutable(version: string, says = version): string {
  return `#!/bin/sh\nif [ "$1" = version ]; then echo '{"version":"${version}"}'; exit 0; fi\necho ${says}\n`;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('Tentacle self-upgrade', () => {
  let dir: string;
  let n = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'upgrade-unit-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** An installation: its executable (version 1.0.0), its home, and the service that upgrades it. */
  async function install(options: { executable?: boolean } = {}) {
    const root = join(dir, `i${++n}`);
    const home = join(root, 'home');
    await mkdir(home, { recursive: true });
    const executable = join(root, 'reef-tentacle');
    await writeFile(executable, fakeExecutable('1.0.0'), { mode: 0o755 });
    const events: string[] = [];
    const service = new UpgradeService({
      executable: options.executable === false ? null : executable,
      home,
      version: '1.0.0',
      logger: silentLogger,
      startWatcher: (previous) => {
        events.push(`watch ${previous}`);
        return 4343;
      },
      restart: () => events.push('restart'),
      restartDelayMs: 0,
    });
    return { root, home, executable, service, events };
  }

  async function stage(service: UpgradeService, content: string, version: string) {
    const target = { version, size: Buffer.byteLength(content), sha256: sha256(content) };
    const half = Math.floor(target.size / 2);
    assert.deepEqual(await service.begin(target), { offset: 0 });
    // A body cut short keeps its bytes: the next attempt resumes after them.
    await assert.rejects(service.upload({ ...target, offset: 0 }, Readable.from([Buffer.from(content).subarray(0, half)])), { code: 'REEF_UPLOAD_INCOMPLETE' });
    assert.deepEqual(await service.begin(target), { offset: half });
    const done = await service.upload({ ...target, offset: half }, Readable.from([Buffer.from(content).subarray(half)]));
    assert.deepEqual(done, target);
    return target;
  }

  test('stages resumably, checks the new file, swaps it in keeping the previous one, and restarts', async () => {
    const { home, executable, service, events } = await install();
    const content = fakeExecutable('2.0.0');
    const target = await stage(service, content, '2.0.0');
    const applied = await service.apply({ version: '2.0.0', sha256: target.sha256, rollbackAfterMs: 60_000 });
    assert.deepEqual(applied, { previousVersion: '1.0.0', executable });
    assert.equal(await readFile(executable, 'utf8'), content);
    assert.equal(await readFile(previousPath(executable), 'utf8'), fakeExecutable('1.0.0'));
    await assert.rejects(stat(stagedPath(executable)), { code: 'ENOENT' });
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(events, [`watch ${previousPath(executable)}`, 'restart']);
    const state = await readUpgradeState(upgradeStatePath(home));
    assert.equal(state?.state, 'pending');
    assert.equal(state?.toVersion, '2.0.0');
    assert.equal(state?.fromVersion, '1.0.0');
    assert.equal(state?.watcherPid, 4343);
    // The old agent, still answering, does not confirm an upgrade to another version.
    assert.equal((await service.status()).state, 'pending');
  });

  test('the new version confirms the upgrade when a server reaches it', async () => {
    const { home, executable } = await install();
    await writeUpgradeState(upgradeStatePath(home), {
      state: 'pending', fromVersion: '1.0.0', toVersion: '2.0.0', executable, deadline: new Date(Date.now() + 60_000).toISOString(), at: new Date().toISOString(), watcherPid: 1,
    });
    const upgraded = new UpgradeService({
      executable, home, version: '2.0.0', logger: silentLogger, startWatcher: () => assert.fail('the watcher runs'), watcherAlive: () => true, restart: () => {},
    });
    await upgraded.recordStart(4242);
    assert.equal((await readUpgradeState(upgradeStatePath(home)))?.agentPid, 4242);
    const status = await upgraded.status();
    assert.equal(status.state, 'confirmed');
    assert.equal(status.version, '2.0.0');
    assert.equal(await watchUpgrade({ home, logger: silentLogger, restartService: async () => assert.fail('no restart') }), 'confirmed');
  });

  test('a new agent that finds the watcher gone (a reboot) starts it again with a whole window', async () => {
    const { home, executable } = await install();
    const window = 60_000;
    const at = Date.now() - 10 * window; // swapped long ago: the deadline passed while the machine was down
    await writeUpgradeState(upgradeStatePath(home), {
      state: 'pending', fromVersion: '1.0.0', toVersion: '2.0.0', executable, startedAt: new Date(at).toISOString(),
      deadline: new Date(at + window).toISOString(), at: new Date(at).toISOString(), watcherPid: 999_999,
    });
    const watchers: string[] = [];
    const upgraded = new UpgradeService({
      executable, home, version: '2.0.0', logger: silentLogger, restart: () => {},
      startWatcher: (previous) => {
        watchers.push(previous);
        return 5454;
      },
      watcherAlive: (pid) => pid !== 999_999,
    });
    const before = Date.now();
    await upgraded.recordStart(4242);
    assert.deepEqual(watchers, [previousPath(executable)]);
    const state = (await readUpgradeState(upgradeStatePath(home)))!;
    assert.equal(state.watcherPid, 5454);
    assert.equal(state.agentPid, 4242);
    assert.ok(Date.parse(state.deadline) >= before + window - 1000, `a whole window from now: ${state.deadline}`);
    // With its watcher alive, a restart of the agent starts no other.
    await upgraded.recordStart(4243);
    assert.equal(watchers.length, 1);
  });

  test('a file that does not report the version asked for is refused and nothing changes', async () => {
    const { executable, service, events } = await install();
    const content = fakeExecutable('2.0.1');
    const target = await stage(service, content, '2.0.0');
    await assert.rejects(service.apply({ version: '2.0.0', sha256: target.sha256, rollbackAfterMs: 60_000 }), (err: ReefError) => {
      assert.equal(err.code, 'REEF_UPGRADE_CHECK_FAILED');
      assert.match(err.message, /reports version 2\.0\.1 instead of 2\.0\.0/);
      return true;
    });
    const broken = '#!/bin/sh\nexit 7\n';
    const second = await stage(service, broken, '2.0.0');
    await assert.rejects(service.apply({ version: '2.0.0', sha256: second.sha256, rollbackAfterMs: 60_000 }), { code: 'REEF_UPGRADE_CHECK_FAILED' });
    assert.equal(await readFile(executable, 'utf8'), fakeExecutable('1.0.0'));
    await assert.rejects(stat(previousPath(executable)), { code: 'ENOENT' });
    assert.deepEqual(events, []);
  });

  test('a staged file with another SHA-256 than the one applied is refused', async () => {
    const { service } = await install();
    await stage(service, fakeExecutable('2.0.0'), '2.0.0');
    await assert.rejects(service.apply({ version: '2.0.0', sha256: sha256('something else'), rollbackAfterMs: 60_000 }), { code: 'REEF_HASH_MISMATCH' });
  });

  test('a Tentacle not running as the single executable says it cannot self-upgrade', async () => {
    const { service } = await install({ executable: false });
    await assert.rejects(service.begin({ version: '2.0.0', size: 1, sha256: sha256('x') }), (err: ReefError) => {
      assert.equal(err.code, 'REEF_UPGRADE_UNSUPPORTED');
      assert.match(err.message, /cannot self-upgrade: it runs from a Node\.js installation/);
      return true;
    });
    assert.deepEqual(await service.status(), { version: '1.0.0', state: 'none' });
  });

  test('the watcher rolls back a version that does not confirm in time, says why, and restarts the service', async () => {
    const { home, executable, service } = await install();
    const target = await stage(service, fakeExecutable('2.0.0', 'broken'), '2.0.0');
    await service.apply({ version: '2.0.0', sha256: target.sha256, rollbackAfterMs: 10_000 });
    // Bring the deadline near instead of waiting the 10 s minimum.
    const state = (await readUpgradeState(upgradeStatePath(home)))!;
    await writeUpgradeState(upgradeStatePath(home), { ...state, deadline: new Date(Date.now() + 300).toISOString() });
    const restarted: string[] = [];
    const started = Date.now();
    const outcome = await watchUpgrade({ home, logger: silentLogger, pollMs: 50, restartService: async (s) => void restarted.push(s.state) });
    assert.equal(outcome, 'rolled-back');
    assert.ok(Date.now() - started >= 250, 'waited for the deadline');
    assert.deepEqual(restarted, ['rolled-back']);
    assert.equal(await readFile(executable, 'utf8'), fakeExecutable('1.0.0'), 'the previous executable is back');
    assert.equal(await readFile(`${executable}.failed`, 'utf8'), fakeExecutable('2.0.0', 'broken'), 'the failed one is kept');
    const status = await service.status();
    assert.equal(status.state, 'rolled-back');
    assert.equal(status.toVersion, '2.0.0');
    assert.match(status.reason!, /Tentacle 2\.0\.0 did not reach a server within .* so the Tentacle rolled back to 1\.0\.0/);
    // Watching again finds nothing pending.
    assert.equal(await watchUpgrade({ home, logger: silentLogger, restartService: async () => assert.fail('no restart') }), 'none');
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { availableUpgrade, compareVersions, parseReleaseName, releaseFor, type TentacleRelease } from '../../src/server/tentacle-releases/index.js';

describe('Tentacle releases', () => {
  test('versions compare as semantic versions, a release above its pre-releases', () => {
    const sorted = ['0.9.0', '0.10.0-rc.1', '0.10.0-rc.2', '0.10.0-rc.10', '0.10.0', '0.10.1', '1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-beta', '1.0.0', '2.0.0+build.7'];
    for (let i = 1; i < sorted.length; i++) {
      assert.ok(compareVersions(sorted[i - 1]!, sorted[i]!) < 0, `${sorted[i - 1]} < ${sorted[i]}`);
      assert.ok(compareVersions(sorted[i]!, sorted[i - 1]!) > 0, `${sorted[i]} > ${sorted[i - 1]}`);
    }
    assert.equal(compareVersions('1.2.3', '1.2.3+other'), 0);
    // Something that is not a version never outranks a real one.
    assert.ok(compareVersions('nightly', '0.0.1') < 0);
  });

  test('only reef-tentacle-<version>-linux-<arch> names are releases', () => {
    assert.deepEqual(parseReleaseName('reef-tentacle-0.2.0-linux-x64'), { version: '0.2.0', arch: 'x64' });
    assert.deepEqual(parseReleaseName('reef-tentacle-1.0.0-rc.1-linux-arm64'), { version: '1.0.0-rc.1', arch: 'arm64' });
    for (const name of ['reef-tentacle-0.2.0-linux-x64.deb', 'reef-tentacle_0.2.0_amd64.deb', 'reef-server-0.2.0-linux-x64.tar.gz', 'reef-tentacle-linux-x64', 'reef-tentacle-0.2.0-linux-riscv']) {
      assert.equal(parseReleaseName(name), null, name);
    }
  });

  const release = (version: string, arch: 'x64' | 'arm64'): TentacleRelease => ({ version, arch, name: `reef-tentacle-${version}-linux-${arch}`, size: 1, sha256: '0'.repeat(64) });
  const releases = [release('0.2.0', 'x64'), release('0.10.0', 'x64'), release('0.3.0', 'arm64')];
  const linux = (arch: string) => ({ platform: 'linux', arch, release: '6.1' });

  test('the newest release for an architecture, or the one asked for', () => {
    assert.equal(releaseFor(releases, 'x64')?.version, '0.10.0');
    assert.equal(releaseFor(releases, 'arm64')?.version, '0.3.0');
    assert.equal(releaseFor(releases, 'x64', '0.2.0')?.version, '0.2.0');
    assert.equal(releaseFor(releases, 'arm64', '0.10.0'), undefined);
    assert.equal(releaseFor(releases, 'ia32'), undefined);
  });

  test('an upgrade is available when a newer release exists for the machine\'s architecture', () => {
    assert.equal(availableUpgrade({ tentacleVersion: '0.2.0', platform: linux('x64') }, releases)?.version, '0.10.0');
    assert.equal(availableUpgrade({ tentacleVersion: '0.10.0', platform: linux('x64') }, releases), undefined);
    assert.equal(availableUpgrade({ tentacleVersion: '0.11.0', platform: linux('x64') }, releases), undefined);
    assert.equal(availableUpgrade({ tentacleVersion: '0.2.0', platform: linux('arm64') }, releases)?.version, '0.3.0');
    // Unknown version or platform (never health-checked), or not Linux: nothing to offer.
    assert.equal(availableUpgrade({ tentacleVersion: '0.2.0', platform: null }, releases), undefined);
    assert.equal(availableUpgrade({ tentacleVersion: null, platform: linux('x64') }, releases), undefined);
    assert.equal(availableUpgrade({ tentacleVersion: '0.2.0', platform: { platform: 'win32', arch: 'x64' } }, releases), undefined);
  });
});

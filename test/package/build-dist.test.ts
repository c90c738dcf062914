/**
 * `npm run build` leaves alone a dist/ that already holds this build: the suites' processes
 * load from dist/ while other test files package (which builds too), and a rebuild empties it
 * first. (`--force` rebuilds; not run here, for that very reason.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { buildDist, DIST, STAMP } from '../../scripts/build.js';
import { buildStamp } from '../../scripts/package/build-info.js';
import '../support/built.js'; // dist/ is fresh, as npm test leaves it

test('a build of what dist/ already holds writes nothing and says it was up to date', async () => {
  const before = { stamp: (await stat(STAMP)).mtimeMs, entries: (await readdir(DIST)).sort() };
  const result = await buildDist();
  assert.equal(result.skipped, true);
  assert.deepEqual([result.version, result.commit], [buildStamp().version, buildStamp().commit]);
  assert.ok(result.modules > 0);
  assert.equal((await stat(STAMP)).mtimeMs, before.stamp, 'build.json was not written again');
  assert.deepEqual((await readdir(DIST)).sort(), before.entries);
});

/**
 * The npm package, as a user gets it: `npm pack` in a fresh copy of the checkout (its
 * `prepack` builds dist/), then `npm install --omit=dev <tarball>` into an empty folder (no
 * tsx, no TypeScript; better-sqlite3 compiles its native module, most of this test's time),
 * then the installed `reef --help`, `tentacle version` and `reef server run` with plain node
 * until its API and portal answer. The tarball holds what runs and nothing else.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { ApiClient } from '../../src/api/client.js';
import { REPO } from '../../scripts/package/build-info.js';
import { freePort, startServer } from '../e2e/harness.js';
import { copyCheckout } from '../support/checkout.js';
import { runTracked, stopAll, trackedTempDir } from '../support/processes.js';

after(stopAll);

/**
 * The environment without npm's own variables: `npm run test:slow` sets npm_config_* for its
 * scripts (npm_config_local_prefix among them), which would point the inner npm at this
 * repository instead of the folder it is run in.
 */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name))), ...extra };
}

async function npm(t: TestContext, cwd: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const started = performance.now();
  const result = await runTracked('npm', args, { cwd, env: cleanEnv(env), timeoutMs });
  t.diagnostic(`npm ${args.join(' ')}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  assert.equal(result.code, 0, `npm ${args.join(' ')} failed (code ${result.code}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

test('npm pack holds what runs; installed with --omit=dev it runs reef --help, tentacle version and reef server run', async (t) => {
  const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
  const version = (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

  // A copy is not a git checkout: the commit comes from REEF_BUILD_COMMIT, as in a CI job.
  const clone = await copyCheckout();
  const packed = await trackedTempDir('reef-packed-');
  await npm(t, clone, ['pack', '--pack-destination', packed], 180_000, { REEF_BUILD_COMMIT: commit });
  const [tarball, ...others] = (await readdir(packed)).filter((name) => name.endsWith('.tgz'));
  assert.ok(tarball && others.length === 0, `one tarball, got ${await readdir(packed)}`);

  const entries = execFileSync('tar', ['-tzf', join(packed, tarball)], { encoding: 'utf8' }).trim().split('\n').map((entry) => entry.replace(/^package\//, ''));
  t.diagnostic(`${tarball}: ${entries.length} files`);
  for (const needed of ['package.json', 'README.md', 'LICENSE', 'bin/reef.js', 'bin/tentacle.js', 'dist/cli/reef.js', 'dist/cli/tentacle.js', 'dist/server/store/migrations/sqlite/001_initial.sql', 'dist/server/store/migrations/postgres/001_initial.sql', 'web/portal.css']) {
    assert.ok(entries.includes(needed), `the tarball holds ${needed}`);
  }
  const unwanted = entries.filter((entry) => /^(src|test|bench|scripts|dist\/packages|node_modules)\//.test(entry) || entry.endsWith('.ts'));
  assert.deepEqual(unwanted, [], 'sources, tests, benchmarks, scripts and packaging outputs stay out of the npm package');
  const allowed = entries.filter((entry) => !/^(bin|dist|web)\//.test(entry) && !['package.json', 'README.md', 'LICENSE'].includes(entry));
  assert.deepEqual(allowed, [], 'nothing else at the top');

  const install = await trackedTempDir('reef-install-');
  await writeFile(join(install, 'package.json'), '{ "private": true }\n');
  await npm(t, install, ['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', join(packed, tarball)], 15 * 60_000);
  const modules = join(install, 'node_modules');
  for (const dev of ['tsx', 'typescript', 'esbuild']) assert.equal(existsSync(join(modules, dev)), false, `${dev} (a dev dependency) is not installed`);

  const bin = (name: string) => join(modules, '.bin', name);
  const help = await runTracked(bin('reef'), ['--help'], { env: cleanEnv(), timeoutMs: 60_000 });
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: reef /);
  const tentacle = await runTracked(bin('tentacle'), ['version'], { env: cleanEnv(), timeoutMs: 60_000 });
  assert.equal(tentacle.code, 0, tentacle.stderr);
  assert.equal(tentacle.stdout.trim(), `Reef Tentacle ${version} (commit ${commit}, Node.js ${process.version}, ${process.platform}-${process.arch})`);

  const server = await startServer({
    command: [process.execPath, join(modules, 'reef/bin/reef.js')],
    dataDir: await trackedTempDir('reef-installed-data-'),
    httpsPort: await freePort(),
    commsPort: await freePort(),
    name: 'installed-server',
  });
  assert.ok(server.adminKey, 'the first run prints an admin API key');
  const api = new ApiClient({ server: server.url, apiKey: server.adminKey, serverThumbprint: server.thumbprint });
  const machines = await api.json<{ items: unknown[] }>('GET', '/api/machines');
  assert.deepEqual(machines.items, [], 'the API answers, from the migrated SQLite store');
  const css = await api.request('GET', '/static/portal.css');
  css.resume();
  assert.equal(css.statusCode, 200, "the portal's assets are served from the package's web/");
  await server.kill();
  assert.equal(server.child.exitCode, 0, 'the server stops cleanly on SIGTERM');
});

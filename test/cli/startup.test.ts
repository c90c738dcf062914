/**
 * The command-line programs start fast because they load only what a command needs
 * (`npm run bench -- startup` measures it): `reef --help` and `tentacle version` load the
 * CLI modules and commander, never the server, the store drivers, the logger, the schemas
 * or the X.509 libraries. Timing is too noisy on a shared machine to assert; the modules a
 * run loads are not, so this test records them (a module hook in the child) and fails,
 * naming the culprit, when a static import brings heavy code back.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { REPO } from '../../scripts/package/build-info.js';
import { REEF_BIN, TENTACLE_BIN } from '../support/built.js';
import { runTracked, stopAll, trackedTempDir } from '../support/processes.js';

after(stopAll);

/** Every file (ESM, or the CommonJS entry of a package imported from ESM) the command loads. */
async function modulesLoaded(bin: string, args: string[], exitCode = 0): Promise<{ stdout: string; modules: string[] }> {
  const log = join(await trackedTempDir('reef-startup-'), 'loaded.txt');
  const hooks = `import { appendFileSync } from 'node:fs';
export async function load(url, context, nextLoad) {
  if (url.startsWith('file:')) appendFileSync(${JSON.stringify(log)}, url + '\\n');
  return nextLoad(url, context);
}`;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
  const result = await runTracked(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, bin, ...args], { timeoutMs: 60_000 });
  assert.equal(result.code, exitCode, result.stderr);
  const urls = (await readFile(log, 'utf8')).trim().split('\n');
  return { stdout: result.stdout, modules: urls.map((url) => new URL(url).pathname) };
}

/** "dist/cli/reef.js", or the package a file belongs to ("commander"). */
function describe(path: string): string {
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path);
  return pkg ? pkg[1]! : path.startsWith(`${REPO}/`) ? path.slice(REPO.length + 1) : path;
}

/**
 * Only commander among the dependencies: the heavy code of Reef's own modules is heavy
 * through its packages (the server through better-sqlite3, pg and ws, schemas through zod,
 * logs through pino, certificates through @peculiar/x509 and node-forge), so a static import
 * of any of it shows here as a package.
 */
function assertLight(modules: string[]): void {
  const loaded = [...new Set(modules.map(describe))];
  const packages = loaded.filter((m) => !m.startsWith('dist/') && !m.startsWith('bin/'));
  assert.deepEqual(packages, ['commander'], `loaded: ${loaded.join(', ')}`);
}

test('reef --help loads the CLI and commander only', async () => {
  const { stdout, modules } = await modulesLoaded(REEF_BIN, ['--help']);
  assert.match(stdout, /^Usage: reef /);
  assert.ok(modules.some((m) => m.endsWith('/dist/cli/reef.js')), 'runs the compiled CLI');
  assertLight(modules);
});

test('tentacle version and tentacle --help load the CLI and commander only', async () => {
  const version = await modulesLoaded(TENTACLE_BIN, ['version']);
  assert.match(version.stdout, /^Reef Tentacle \d+\.\d+\.\d+/);
  assertLight(version.modules);
  const help = await modulesLoaded(TENTACLE_BIN, ['--help']);
  assert.match(help.stdout, /^Usage: tentacle /);
  assertLight(help.modules);
});

test('an API command loads the API client without the contract\'s schemas (zod)', async () => {
  // Nothing listens on port 1: the command fails to connect (exit 1), after loading all it needs.
  const { modules } = await modulesLoaded(REEF_BIN, ['machines', 'list', '--server', 'https://127.0.0.1:1', '--api-key', `API-${'A'.repeat(32)}`], 1);
  assertLight(modules);
});

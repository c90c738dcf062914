/**
 * `npm run build`: compiles src/ into dist/ so Reef runs with plain `node` (bin/reef.js and
 * bin/tentacle.js load dist/cli/*.js; the npm package ships dist/, not src/).
 *
 * Each src/**\/*.ts becomes one dist/**\/*.js (ESM, Node 20) with a linked source map, in the
 * same layout: a module that resolves a path from import.meta.url (`../../bin/tentacle.js`,
 * `../../../web/`, `./migrations/sqlite/`) finds the same file from dist/ as from src/. It is
 * a transpile, not a bundle: dependencies stay in node_modules and load only when imported,
 * and there is no type checking (that is `npm run typecheck`, tsc over everything).
 * `__REEF_BUILD__` becomes the version and commit (scripts/package/build-info.ts, which the
 * packaging bundles use too). Files src/ needs at
 * run time (the .sql migrations) are copied beside the code.
 *
 * The compiled tree is wiped first; dist/packages/ (the outputs of `npm run package`) is kept.
 * A dist/ that already holds this build is left alone (`--force` rebuilds it).
 * dist/build.json, written last, records what was built; `distState()` compares it with src/.
 */
import { build } from 'esbuild';
import { copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildStamp, PACKAGES_DIR, REPO, type BuildStamp } from './package/build-info.js';

export const SRC = join(REPO, 'src');
export const DIST = join(REPO, 'dist');
/** Written last, so a build that stopped half way counts as no build. */
export const STAMP = join(DIST, 'build.json');
/** What the build leaves in dist/: where `npm run package` writes (dist/packages/). */
const KEEP = new Set([relative(DIST, PACKAGES_DIR)]);
/** Copied beside the compiled code: read at run time. */
const ASSETS = new Set(['.sql']);
/** Notes for developers, not needed at run time. */
const DOCS = new Set(['.md']);

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort();
}

export interface BuildResult extends BuildStamp {
  modules: number;
  assets: number;
  ms: number;
  /** dist/ was already this build: nothing was written. */
  skipped?: boolean;
}

/**
 * Compiles src/ into dist/, unless dist/ already holds a complete build of these sources
 * with the same stamp (`force` rebuilds anyway). Skipping matters beyond the time saved: a
 * rebuild empties dist/ first, and a test suite's processes (or a running quick start) load
 * from dist/ while other test files package (`npm run package`, `npm pack` build too).
 */
export async function buildDist({ force = false }: { force?: boolean } = {}): Promise<BuildResult> {
  const started = performance.now();
  if (!force) {
    const current = await currentBuild();
    if (current) return { ...current, ms: performance.now() - started, skipped: true };
  }
  const files = await listFiles(SRC);
  const modules: string[] = [];
  const assets: string[] = [];
  for (const file of files) {
    const ext = extname(file);
    if (ext === '.ts') modules.push(file);
    else if (ASSETS.has(ext)) assets.push(file);
    else if (!DOCS.has(ext)) {
      // Fail rather than guess: a forgotten asset would only show when the installed package runs.
      throw new Error(`${relative(REPO, file)}: the build does not know whether to ship "${ext}" files; add the extension to ASSETS or DOCS in scripts/build.ts`);
    }
  }
  const collision = (await readdir(SRC)).find((name) => KEEP.has(name));
  if (collision) throw new Error(`src/${collision} would land in dist/${collision}, which belongs to npm run package`);

  await mkdir(DIST, { recursive: true });
  for (const entry of await readdir(DIST)) {
    if (!KEEP.has(entry)) await rm(join(DIST, entry), { recursive: true, force: true });
  }

  const stamp = buildStamp();
  await build({
    entryPoints: modules,
    outbase: SRC,
    outdir: DIST,
    bundle: false,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Linked maps with the sources inside: `node --enable-source-maps` gives TypeScript
    // positions in an installed package, which has no src/.
    sourcemap: 'linked',
    sourcesContent: true,
    define: { __REEF_BUILD__: JSON.stringify(stamp) },
    logLevel: 'warning',
  });
  for (const file of assets) {
    const target = join(DIST, relative(SRC, file));
    await mkdir(dirname(target), { recursive: true });
    await copyFile(file, target);
  }
  await writeFile(STAMP, `${JSON.stringify({ ...stamp, modules: modules.length, assets: assets.length }, null, 2)}\n`);
  return { ...stamp, modules: modules.length, assets: assets.length, ms: performance.now() - started };
}

/** dist/'s build when it is fresh and stamped as a build now would be; undefined otherwise. */
async function currentBuild(): Promise<Omit<BuildResult, 'ms'> | undefined> {
  if ((await distState()).state !== 'fresh') return undefined;
  try {
    const built = JSON.parse(await readFile(STAMP, 'utf8')) as Omit<BuildResult, 'ms'>;
    const stamp = buildStamp();
    return built.version === stamp.version && built.commit === stamp.commit ? built : undefined;
  } catch {
    return undefined;
  }
}

export type DistState = { state: 'fresh' } | { state: 'missing' } | { state: 'stale'; newer: string };

/**
 * Whether dist/ holds a complete build at least as new as every file in src/ and
 * package.json (by modification time: a checkout or an edit makes a source newer).
 */
export async function distState(): Promise<DistState> {
  const built = await stat(STAMP).catch(() => undefined);
  if (!built) return { state: 'missing' };
  // The build script itself counts as a source: a change to it changes what it writes.
  for (const file of [join(REPO, 'package.json'), fileURLToPath(import.meta.url), ...(await listFiles(SRC))]) {
    if ((await stat(file)).mtimeMs > built.mtimeMs) return { state: 'stale', newer: relative(REPO, file) };
  }
  return { state: 'fresh' };
}

if (import.meta.filename === process.argv[1]) {
  try {
    const result = await buildDist({ force: process.argv.includes('--force') });
    process.stdout.write(
      result.skipped
        ? `dist/ is up to date: ${result.modules} modules, ${result.assets} assets, Reef ${result.version} (commit ${result.commit}); --force rebuilds it\n`
        : `Built dist/: ${result.modules} modules, ${result.assets} assets, Reef ${result.version} (commit ${result.commit}) in ${Math.round(result.ms)} ms\n`,
    );
  } catch (err) {
    // esbuild has printed its own diagnostics already; the message names what failed.
    process.stderr.write(`build failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

/**
 * The single executable Tentacle: the Tentacle CLI bundled by esbuild into one CommonJS
 * file, made into a Node single executable application blob (`node
 * --experimental-sea-config`) and injected with postject into a copy of a Node binary for
 * the target architecture. The result needs nothing beside it: no node, no node_modules.
 *
 * Output: <outDir>/reef-tentacle-<version>-linux-<arch> (other packaging steps and the
 * server's downloads rely on this name; see `tentacleExecutableName`).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { build, type Metafile } from 'esbuild';
import { inject } from 'postject';
import { buildStamp, PACKAGES_DIR, REPO, type BuildStamp } from './build-info.js';
import { nodeRuntime, type LinuxArch, type NodeRuntime } from './node-runtime.js';

const run = promisify(execFile);

/** The bundle's entry: the Tentacle program, started unconditionally. */
const ENTRY = join(REPO, 'src/cli/tentacle-executable.ts');

/** Where Node looks for the blob: the resource name and the fuse its binary carries (Node's SEA docs). */
const SEA_RESOURCE = 'NODE_SEA_BLOB';
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/**
 * Packages only the server uses. A Tentacle bundle holding one is a wrong import somewhere
 * (src/tentacle must never reach src/server), and native ones could not load from a single
 * executable anyway, so the build fails.
 */
const SERVER_ONLY_PACKAGES: readonly string[] = ['better-sqlite3', 'bindings', 'pg', 'pg-pool', 'pg-protocol', 'pg-types', 'pg-connection-string', 'kysely', 'tsx', 'typescript', 'esbuild', 'postject', '@asteasolutions/zod-to-openapi'];
const SERVER_ONLY_SOURCE = /(^|\/)src\/server\//;

/**
 * Non-built-in requires allowed to stay unresolved: ws's optional native speed-ups, which it
 * loads in a try/catch and does without (inside a single executable `require` only loads
 * built-in modules, so they always fail there, harmlessly).
 */
const OPTIONAL_EXTERNALS: readonly string[] = ['bufferutil', 'utf-8-validate'];

export function tentacleExecutableName(version: string, arch: LinuxArch): string {
  return `reef-tentacle-${version}-linux-${arch}`;
}

export interface TentacleExecutableOptions {
  arch: LinuxArch;
  /** Default dist/packages. */
  outDir?: string;
  /**
   * Put V8's code cache for the bundle into the blob (faster start). Only possible when the
   * runtime is the running node (the cache is made by it); the default is true then.
   */
  codeCache?: boolean;
  /** Minify the bundle (less to parse at start). Default true. */
  minify?: boolean;
  /** Cache for registry Node binaries (see node-runtime.ts). */
  cacheDir?: string;
  /** Version and commit to stamp (default: package.json's and git's). */
  stamp?: BuildStamp;
  log?: (line: string) => void;
}

export interface TentacleExecutable {
  path: string;
  sha256: string;
  bytes: number;
  arch: LinuxArch;
  version: string;
  commit: string;
  /** The Node.js version inside. */
  node: string;
  codeCache: boolean;
  /** The bundled script's size. */
  bundleBytes: number;
}

export async function buildTentacleExecutable(options: TentacleExecutableOptions): Promise<TentacleExecutable> {
  const log = options.log ?? (() => {});
  const outDir = resolve(options.outDir ?? PACKAGES_DIR);
  const stamp = options.stamp ?? buildStamp();
  const runtime = await nodeRuntime(options.arch, { ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}), log });
  const codeCache = options.codeCache ?? runtime.isRunningNode;
  if (codeCache && !runtime.isRunningNode) {
    throw new Error(`V8 code cache cannot be built for linux-${options.arch} here: the cache is made by the running node (linux-${process.arch}). Build without it.`);
  }
  log(`linux-${options.arch}: Node ${runtime.version} from ${runtime.source}`);

  await mkdir(outDir, { recursive: true });
  // Work next to the output, so the finished file is renamed into place (never half written).
  const work = await mkdtemp(join(outDir, `.build-tentacle-${options.arch}-`));
  try {
    const bundle = join(work, 'reef-tentacle.cjs');
    await bundleTentacle(bundle, stamp, options.minify ?? true);
    const bundleBytes = (await stat(bundle)).size;

    const blob = join(work, 'reef-tentacle.blob');
    await writeSeaBlob(bundle, blob, codeCache);

    const staged = join(work, tentacleExecutableName(stamp.version, options.arch));
    await copyFile(runtime.path, staged);
    await chmod(staged, 0o755);
    await injectBlob(staged, blob, runtime);

    const contents = await readFile(staged);
    const result: TentacleExecutable = {
      path: join(outDir, tentacleExecutableName(stamp.version, options.arch)),
      sha256: createHash('sha256').update(contents).digest('hex'),
      bytes: contents.length,
      arch: options.arch,
      version: stamp.version,
      commit: stamp.commit,
      node: runtime.version,
      codeCache,
      bundleBytes,
    };
    // Only a build that runs replaces the previous one (where it can run here).
    if (runtime.isRunningNode) await checkRuns(staged, result);
    await rename(staged, result.path);
    log(`${result.path}: ${result.bytes} bytes, sha256 ${result.sha256}`);
    return result;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** One CommonJS file with everything the Tentacle runs, checked for what must not be in it. */
export async function bundleTentacle(outfile: string, stamp: BuildStamp, minify: boolean): Promise<Metafile> {
  const result = await build({
    entryPoints: [ENTRY],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify,
    // Names stay: errors and logs print class names (ReefError, pino's err.type).
    keepNames: true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'silent',
    external: [...OPTIONAL_EXTERNALS],
    define: {
      __REEF_BUILD__: JSON.stringify(stamp),
      // A single executable's code has no module URL; code that needs one guards with
      // isSea() (src/tentacle/paths.ts). Said outright, so esbuild need not warn about it.
      'import.meta.url': 'undefined',
    },
  });
  const problems = [...result.errors, ...result.warnings].map((m) => `${m.location ? `${m.location.file}:${m.location.line}: ` : ''}${m.text}`);
  if (problems.length > 0) throw new Error(`Bundling the Tentacle reported:\n${problems.join('\n')}`);
  checkBundleInputs(result.metafile);
  checkBundleCode(await readFile(outfile, 'utf8'));
  return result.metafile;
}

/**
 * Fails on code that resolves a module from its own URL at run time: in a single executable
 * import.meta.url is undefined, so `createRequire(import.meta.url)` throws there, and what it
 * would require from disk is not in the bundle (import lazily loaded code with a dynamic
 * `import()` instead: esbuild bundles that).
 */
export function checkBundleCode(code: string): void {
  if (/createRequire\)?\(void 0\)/.test(code)) {
    throw new Error('The Tentacle bundle calls createRequire(import.meta.url), which throws in a single executable; load the module with a dynamic import() instead.');
  }
}

/** Fails when the bundle holds a server-only module or native code, or requires something a single executable cannot load. */
export function checkBundleInputs(metafile: Metafile): void {
  const problems: string[] = [];
  for (const [input, info] of Object.entries(metafile.inputs)) {
    const pkg = packageOf(input);
    if (pkg && SERVER_ONLY_PACKAGES.includes(pkg)) problems.push(`${input}: package "${pkg}" is server-only`);
    if (!pkg && SERVER_ONLY_SOURCE.test(input)) problems.push(`${input}: server code`);
    if (input.endsWith('.node')) problems.push(`${input}: a native addon (cannot load from a single executable)`);
    for (const imported of info.imports) {
      // "<runtime>", "<define:...>": esbuild's own virtual modules, always inlined.
      const virtual = /^<.*>$/.test(imported.path);
      if (imported.external && !virtual && !isBuiltin(imported.path) && !OPTIONAL_EXTERNALS.includes(imported.path)) {
        problems.push(`${input}: requires "${imported.path}", which is neither bundled nor built in`);
      }
    }
  }
  if (problems.length > 0) throw new Error(`The Tentacle bundle must hold only what the Tentacle runs:\n${problems.join('\n')}`);
}

/** "pg" for ".../node_modules/pg/lib/index.js", "@scope/name" for scoped packages; undefined outside node_modules. */
function packageOf(input: string): string | undefined {
  const at = input.lastIndexOf('node_modules/');
  if (at < 0) return undefined;
  const parts = input.slice(at + 'node_modules/'.length).split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

/**
 * The blob records `main` as given (it names the script in stack traces), so it is given
 * relative to the work folder: the same sources then make the same executable, byte for byte.
 */
async function writeSeaBlob(bundle: string, blob: string, useCodeCache: boolean): Promise<void> {
  const work = dirname(bundle);
  const config = join(work, 'sea-config.json');
  const seaConfig = { main: basename(bundle), output: basename(blob), disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache };
  await writeFile(config, JSON.stringify(seaConfig, null, 2));
  try {
    await run(process.execPath, ['--experimental-sea-config', config], { cwd: work, timeout: 120_000 });
  } catch (err) {
    const { stderr } = err as { stderr?: string };
    throw new Error(`node --experimental-sea-config failed: ${stderr || (err as Error).message}`);
  }
}

async function injectBlob(executable: string, blob: string, runtime: NodeRuntime): Promise<void> {
  // postject checks the fuse too, but only after minutes of work on a wrong binary.
  const binary = await readFile(runtime.path);
  if (binary.indexOf(SEA_FUSE) < 0) throw new Error(`${runtime.path} has no single executable fuse (${SEA_FUSE}): it is not an official Node build with SEA support.`);
  await inject(executable, SEA_RESOURCE, await readFile(blob), { sentinelFuse: SEA_FUSE });
}

/** Runs `version` in the new executable (only where it can run): a broken build fails here, not on a machine. */
async function checkRuns(executable: string, built: TentacleExecutable): Promise<void> {
  let stdout: string;
  try {
    ({ stdout } = await run(executable, ['version', '--format', 'json'], { timeout: 60_000, env: { PATH: '/nonexistent' } }));
  } catch (err) {
    const { stderr } = err as { stderr?: string };
    throw new Error(`The built executable for linux-${built.arch} does not run "version": ${stderr || (err as Error).message}`);
  }
  const info = JSON.parse(stdout) as { version?: string; commit?: string; node?: string };
  if (info.version !== built.version || info.commit !== built.commit || info.node !== `v${built.node}`) {
    throw new Error(`The built executable reports ${stdout.trim()}; expected version ${built.version}, commit ${built.commit}, node v${built.node}.`);
  }
}

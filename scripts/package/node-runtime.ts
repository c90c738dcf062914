/**
 * The Node.js binary a single executable is made from. For the build machine's own
 * architecture that is the running node; for another one it is the official binary the npm
 * registry ships as `node-linux-<arch>`, fetched once with `npm pack` (which checks the
 * registry's integrity) into a cache folder, so later builds work offline.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type LinuxArch = 'x64' | 'arm64';
export const LINUX_ARCHES: readonly LinuxArch[] = ['x64', 'arm64'];

/** ELF e_machine of each architecture: a wrong binary in the cache fails the build, not the machine it is installed on. */
const ELF_MACHINE: Record<LinuxArch, number> = { x64: 0x3e, arm64: 0xb7 };

/** Node's single executable support (node:sea, SEA config fields we use) is stable from 20.12. */
const MIN_NODE: readonly [number, number] = [20, 12];

export interface NodeRuntime {
  /** The binary to copy and inject. */
  path: string;
  /** Its version (without "v"). */
  version: string;
  /** True when it is the running node: a blob with V8 code cache made here fits it. */
  isRunningNode: boolean;
  /** Where it came from, for the build log. */
  source: string;
}

export interface RuntimeOptions {
  /** Cache for registry packages (default $REEF_PACKAGE_CACHE, else $XDG_CACHE_HOME/reef-package or ~/.cache/reef-package). */
  cacheDir?: string;
  /** Progress and warnings (a same-major fallback version is announced here). */
  log?: (line: string) => void;
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.REEF_PACKAGE_CACHE?.trim()) return env.REEF_PACKAGE_CACHE.trim();
  const xdg = env.XDG_CACHE_HOME?.trim();
  return join(xdg || join(homedir(), '.cache'), 'reef-package');
}

export function assertBuildNode(version = process.versions.node): void {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  if (major < MIN_NODE[0] || (major === MIN_NODE[0] && minor < MIN_NODE[1])) {
    throw new Error(`Building a single executable needs Node ${MIN_NODE.join('.')} or newer (node:sea and its config); this is Node ${version}.`);
  }
}

export async function nodeRuntime(arch: LinuxArch, options: RuntimeOptions = {}): Promise<NodeRuntime> {
  assertBuildNode();
  if (process.platform === 'linux' && process.arch === arch) {
    await assertElf(process.execPath, arch);
    return { path: process.execPath, version: process.versions.node, isRunningNode: true, source: `the running node (${process.execPath})` };
  }
  return registryNode(arch, options);
}

/**
 * `node-linux-<arch>` at the running node's version, so a blob made by the running node
 * fits it. When the registry lacks that exact version, the nearest one of the same major
 * (announced through `log`): SEA blobs without code cache keep their format within a major.
 */
async function registryNode(arch: LinuxArch, options: RuntimeOptions): Promise<NodeRuntime> {
  const log = options.log ?? (() => {});
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const name = `node-linux-${arch}`;
  const wanted = process.versions.node;
  await mkdir(cacheDir, { recursive: true });

  let version = wanted;
  if (!(await cachedPackage(cacheDir, name, version))) {
    version = await resolveVersion(name, wanted, cacheDir);
    if (version !== wanted) log(`warning: the registry has no ${name}@${wanted}; using ${name}@${version}, the nearest of the same major`);
    if (!(await cachedPackage(cacheDir, name, version))) await fetchPackage(cacheDir, name, version, log);
  }
  const binary = join(cacheDir, `${name}-${version}`, 'bin', 'node');
  if (!existsSync(binary)) await extractBinary(cacheDir, name, version);
  await assertElf(binary, arch);
  return { path: binary, version, isRunningNode: false, source: `${name}@${version} from the npm registry (cached in ${cacheDir})` };
}

interface CacheRecord {
  integrity: string;
  filename: string;
}

function recordPath(cacheDir: string, name: string, version: string): string {
  return join(cacheDir, `${name}-${version}.json`);
}

/**
 * True when the cache holds the package's tarball and it still matches the integrity the
 * registry gave for it (a truncated or altered file is fetched again).
 */
async function cachedPackage(cacheDir: string, name: string, version: string): Promise<boolean> {
  let record: CacheRecord;
  try {
    record = JSON.parse(await readFile(recordPath(cacheDir, name, version), 'utf8')) as CacheRecord;
  } catch {
    return false;
  }
  const tarball = join(cacheDir, record.filename);
  if (!existsSync(tarball)) return false;
  const [algorithm, expected] = record.integrity.split(/-(.*)/s);
  if (!algorithm || !expected) return false;
  const actual = createHash(algorithm).update(await readFile(tarball)).digest('base64');
  if (actual !== expected) {
    await rm(join(cacheDir, `${name}-${version}`), { recursive: true, force: true });
    return false;
  }
  return true;
}

/** The exact version when the registry has it, else the nearest of the same major. */
async function resolveVersion(name: string, wanted: string, cacheDir: string): Promise<string> {
  const major = wanted.split('.')[0]!;
  let versions: string[];
  try {
    const { stdout } = await run('npm', ['view', `${name}@${major}`, 'version', '--json'], { cwd: cacheDir, timeout: 120_000 });
    const parsed = JSON.parse(stdout) as string | string[];
    versions = Array.isArray(parsed) ? parsed : [parsed];
  } catch (err) {
    throw new Error(`${name}@${wanted} is not in ${cacheDir}, and asking the npm registry for it failed (offline? run the build once with the registry reachable): ${(err as Error).message}`);
  }
  if (versions.includes(wanted)) return wanted;
  const distance = (v: string) => Math.abs(versionNumber(v) - versionNumber(wanted));
  const nearest = [...versions].sort((a, b) => distance(a) - distance(b) || versionNumber(b) - versionNumber(a))[0];
  if (!nearest) throw new Error(`The npm registry has no ${name} of major ${major}.`);
  return nearest;
}

function versionNumber(version: string): number {
  const [a = 0, b = 0, c = 0] = version.split('.').map(Number);
  return a * 1e6 + b * 1e3 + c;
}

async function fetchPackage(cacheDir: string, name: string, version: string, log: (line: string) => void): Promise<void> {
  log(`fetching ${name}@${version} from the npm registry into ${cacheDir}`);
  let stdout: string;
  try {
    // npm pack checks the tarball against the registry's integrity before writing it.
    ({ stdout } = await run('npm', ['pack', `${name}@${version}`, '--json', '--pack-destination', cacheDir], { cwd: cacheDir, timeout: 600_000, maxBuffer: 16 << 20 }));
  } catch (err) {
    throw new Error(`npm pack ${name}@${version} failed: ${(err as Error).message}`);
  }
  const [packed] = JSON.parse(stdout) as { integrity: string; filename: string }[];
  if (!packed?.integrity || !packed.filename) throw new Error(`npm pack ${name}@${version} printed no integrity: ${stdout.slice(0, 500)}`);
  const record: CacheRecord = { integrity: packed.integrity, filename: packed.filename };
  await writeFile(recordPath(cacheDir, name, version), `${JSON.stringify(record, null, 2)}\n`);
  if (!(await cachedPackage(cacheDir, name, version))) throw new Error(`${join(cacheDir, packed.filename)} does not match the integrity npm reported`);
}

/** Unpacks bin/node next to the tarball; into a temp folder first, so an interrupted run leaves no half binary. */
async function extractBinary(cacheDir: string, name: string, version: string): Promise<void> {
  const record = JSON.parse(await readFile(recordPath(cacheDir, name, version), 'utf8')) as CacheRecord;
  const temp = await mkdtemp(join(cacheDir, `.extract-${name}-`));
  try {
    await run('tar', ['-xzf', join(cacheDir, record.filename), '-C', temp, 'package/bin/node'], { timeout: 300_000 });
    await rm(join(cacheDir, `${name}-${version}`), { recursive: true, force: true });
    await rename(join(temp, 'package'), join(cacheDir, `${name}-${version}`));
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

/** Fails unless `path` is an ELF executable for `arch`. */
async function assertElf(path: string, arch: LinuxArch): Promise<void> {
  const file = await open(path, 'r');
  try {
    const header = Buffer.alloc(20);
    await file.read(header, 0, 20, 0);
    const isElf = header.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    if (!isElf || header.readUInt16LE(18) !== ELF_MACHINE[arch]) throw new Error(`${path} is not a linux-${arch} ELF executable`);
  } finally {
    await file.close();
  }
}

/**
 * A Debian binary package from a staged file tree, with `dpkg-deb` alone: no debhelper, no
 * network. The tree is laid out as it will be installed (`usr/lib/...`, `usr/bin/...`,
 * `lib/systemd/system/...`); this module adds DEBIAN/ (control, md5sums, conffiles,
 * maintainer scripts) and builds `<name>_<version>_<arch>.deb`.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO } from './build-info.js';

export type DebArch = 'amd64' | 'arm64';

/** Debian's name for a Node.js `process.arch`. */
export function debArch(nodeArch: 'x64' | 'arm64'): DebArch {
  return nodeArch === 'x64' ? 'amd64' : 'arm64';
}

export interface DebSpec {
  name: string;
  version: string;
  arch: DebArch;
  /** One line, then the long description (lines are indented as control files want). */
  summary: string;
  description: string;
  depends?: string[];
  /** The staged tree: what dpkg installs, relative to /. DEBIAN/ is written into it. */
  root: string;
  /** Absolute paths of configuration files dpkg keeps on upgrade and removes on purge. */
  conffiles?: string[];
  /** Shell scripts by name (postinst, prerm, postrm, preinst). */
  scripts?: Partial<Record<MaintainerScript, string>>;
  outDir: string;
  /** gzip by default: a tenth of xz's build time for a few percent more size. */
  compression?: 'gzip' | 'xz' | 'zstd';
}

/** Nobody answers mail for Reef yet; `.invalid` says so instead of inventing an address. */
const MAINTAINER = 'Reef maintainers <packages@reef.invalid>';

export function buildDeb(spec: DebSpec): string {
  const debian = join(spec.root, 'DEBIAN');
  mkdirSync(debian, { recursive: true });
  const files = listFiles(spec.root).filter((f) => !f.startsWith('DEBIAN/'));
  const installedKiB = Math.ceil(files.reduce((sum, f) => sum + lstatSync(join(spec.root, f)).size, 0) / 1024);
  const control = [
    `Package: ${spec.name}`,
    `Version: ${spec.version}`,
    `Architecture: ${spec.arch}`,
    `Maintainer: ${MAINTAINER}`,
    `Installed-Size: ${installedKiB}`,
    ...(spec.depends?.length ? [`Depends: ${spec.depends.join(', ')}`] : []),
    'Section: admin',
    'Priority: optional',
    `Description: ${spec.summary}`,
    ...spec.description
      .trim()
      .split('\n')
      .map((line) => (line.trim() === '' ? ' .' : ` ${line}`)),
  ];
  writeFileSync(join(debian, 'control'), `${control.join('\n')}\n`);
  const sums = files
    .filter((f) => lstatSync(join(spec.root, f)).isFile())
    .map((f) => `${createHash('md5').update(readFileSync(join(spec.root, f))).digest('hex')}  ${f}`);
  writeFileSync(join(debian, 'md5sums'), `${sums.join('\n')}\n`);
  if (spec.conffiles?.length) writeFileSync(join(debian, 'conffiles'), `${spec.conffiles.join('\n')}\n`);
  for (const [name, text] of Object.entries(spec.scripts ?? {})) {
    writeFileSync(join(debian, name), text);
    chmodSync(join(debian, name), 0o755);
  }
  mkdirSync(spec.outDir, { recursive: true });
  const out = join(spec.outDir, `${spec.name}_${spec.version}_${spec.arch}.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', `-Z${spec.compression ?? 'gzip'}`, '--build', spec.root, out], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return out;
}

/** Every file and symlink below root, as relative paths, sorted. */
function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else out.push(relative(root, full));
    }
  };
  walk(root);
  return out.sort();
}

type MaintainerScript = 'preinst' | 'postinst' | 'prerm' | 'postrm';

/** The maintainer scripts of a package, from scripts/package/debian/<package>.<script>. */
export function maintainerScripts(pkg: 'server' | 'tentacle'): Partial<Record<MaintainerScript, string>> {
  const scripts: Partial<Record<MaintainerScript, string>> = {};
  for (const name of ['preinst', 'postinst', 'prerm', 'postrm'] as const) {
    const file = join(import.meta.dirname, 'debian', `${pkg}.${name}`);
    if (existsSync(file)) scripts[name] = readFileSync(file, 'utf8');
  }
  return scripts;
}

/** Debian policy puts the license at /usr/share/doc/<package>/copyright. */
export function addCopyright(root: string, name: string): void {
  const doc = join(root, 'usr/share/doc', name);
  mkdirSync(doc, { recursive: true });
  copyFileSync(join(REPO, 'LICENSE'), join(doc, 'copyright'));
}

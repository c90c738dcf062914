/**
 * The server's self-contained tree: the Node.js runtime this build runs on, the compiled
 * dist/, the portal's web/ assets and the production node_modules (better-sqlite3 compiled
 * for that runtime), plus a `bin/reef` launcher. A server machine needs no npm and no Node:
 * the tarball unpacks this tree anywhere, the .deb puts it in /usr/lib/reef-server.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Of a native module's package, only what loads at run time: better-sqlite3 also holds
 * SQLite's sources and its build's object files (28 MB of 30).
 */
const NATIVE_RUNTIME_FILES: Record<string, string[]> = {
  'better-sqlite3': ['package.json', 'LICENSE', 'lib', 'build/Release/better_sqlite3.node'],
};

/**
 * The launcher: finds the tree through its own real path, so a /usr/bin symlink and an
 * unpacked tarball anywhere both work, and runs the bundled Node on the compiled CLI.
 */
const LAUNCHER = `#!/bin/sh
# Reef's admin CLI and server, on the Node.js runtime shipped beside it.
here=$(dirname "$(readlink -f "$0")")
exec "$here/../node" "$here/../dist/cli/reef.js" "$@"
`;

export interface ServerTreeOptions {
  /** The repository, built (`npm run build`): dist/ must exist. */
  repo: string;
  /** Created empty; the tree goes here. */
  out: string;
  /** The runtime to ship. Default: the Node.js running this build (linux-x64 here). */
  nodeBinary?: string;
}

export function stageServerTree({ repo, out, nodeBinary = process.execPath }: ServerTreeOptions): void {
  if (!existsSync(join(repo, 'dist', 'cli', 'reef.js'))) {
    throw new Error(`${repo}/dist is not built: run "npm run build" first.`);
  }
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'bin'), { recursive: true });
  copyFileSync(nodeBinary, join(out, 'node'));
  chmodSync(join(out, 'node'), 0o755);
  writeFileSync(join(out, 'bin', 'reef'), LAUNCHER, { mode: 0o755 });
  // dist/packages holds the packages themselves: never inside them.
  cpSync(join(repo, 'dist'), join(out, 'dist'), { recursive: true, filter: (src) => relative(join(repo, 'dist'), src) !== 'packages' });
  cpSync(join(repo, 'web'), join(out, 'web'), { recursive: true });
  for (const file of ['package.json', 'README.md', 'LICENSE']) copyFileSync(join(repo, file), join(out, file));
  for (const pkg of productionPackages(repo)) copyPackage(repo, pkg, out);
}

/** node_modules/… folders of the production dependency tree, as npm resolved it. */
function productionPackages(repo: string): string[] {
  const listing = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: repo, encoding: 'utf8' });
  return listing
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => relative(repo, line))
    .filter((path) => path.startsWith('node_modules'));
}

function copyPackage(repo: string, pkg: string, out: string): void {
  const name = pkg.replace(/^.*node_modules\//, '');
  const only = NATIVE_RUNTIME_FILES[name];
  if (!only) {
    // A nested node_modules is copied with its own package when listed; skip it here.
    cpSync(join(repo, pkg), join(out, pkg), { recursive: true, filter: (src) => !relative(join(repo, pkg), src).startsWith('node_modules') });
    return;
  }
  for (const part of only) {
    const from = join(repo, pkg, part);
    if (!existsSync(from)) throw new Error(`${pkg}/${part} is missing: is ${name} installed and built?`);
    cpSync(from, join(out, pkg, part), { recursive: true });
  }
}

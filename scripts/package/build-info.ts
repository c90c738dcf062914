/**
 * What a build of Reef says about itself: the version and commit every built artifact
 * carries (src/version.ts reads them from `__REEF_BUILD__`, which bundles replace with a
 * literal) and the root folder the packaging scripts work from.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** The repository root (this file is scripts/package/build-info.ts). */
export const REPO = resolve(import.meta.dirname, '../..');

/** Where `npm run package` puts what it builds. */
export const PACKAGES_DIR = resolve(REPO, 'dist/packages');

export interface BuildStamp {
  version: string;
  commit: string;
}

/** package.json's version: the one source of Reef's version. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(resolve(REPO, 'package.json'), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string' || pkg.version === '') throw new Error(`${resolve(REPO, 'package.json')} has no "version"`);
  return pkg.version;
}

/**
 * The commit built from: $REEF_BUILD_COMMIT wins (a CI job building from a tarball, or a
 * reproducible rebuild), else `git rev-parse HEAD`, else "unknown" (no git, or not a clone).
 */
export function buildCommit(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.REEF_BUILD_COMMIT?.trim();
  if (fromEnv) return fromEnv;
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * The version a build writes in: $REEF_BUILD_VERSION wins (a test building a Tentacle with
 * another version string to upgrade to, a patched rebuild), else package.json's.
 */
export function buildVersion(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.REEF_BUILD_VERSION?.trim();
  if (fromEnv) {
    if (!/^[0-9][A-Za-z0-9.+~-]{0,99}$/.test(fromEnv)) throw new Error(`REEF_BUILD_VERSION must start with a digit and hold only letters, digits and ".+~-", not "${fromEnv}"`);
    return fromEnv;
  }
  return packageVersion();
}

export function buildStamp(): BuildStamp {
  return { version: buildVersion(), commit: buildCommit() };
}

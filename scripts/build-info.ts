/**
 * What a build writes into the code in place of `__REEF_BUILD__` (src/version.ts): the
 * version from package.json and the commit built from. Shared by every build (scripts/build.ts
 * and the bundles of `npm run package`) so they all report the same thing.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '..');

export interface BuildInfo {
  version: string;
  commit: string;
}

/**
 * The commit: `$REEF_BUILD_COMMIT` when set (a build from an exported tree, or CI naming it
 * explicitly), else `git rev-parse HEAD` of the checkout, else "unknown" (no git, or not a
 * checkout: a build from a source tarball).
 */
export function buildCommit(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.REEF_BUILD_COMMIT?.trim();
  if (fromEnv) return fromEnv;
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

export function buildInfo(env: NodeJS.ProcessEnv = process.env): BuildInfo {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
  return { version: pkg.version, commit: buildCommit(env) };
}

/** esbuild's `define` that writes `info` in. */
export function buildDefine(info: BuildInfo): Record<string, string> {
  return { __REEF_BUILD__: JSON.stringify(info) };
}

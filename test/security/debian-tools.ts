/**
 * The Debian scanners the security tests run (.ci/run installs each). A missing tool fails
 * its test when it could have been installed (root, as in CI); without root the test is
 * skipped, saying what to install.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';

/** A skip message when `path` is missing and this user could not have installed `pkg`. */
export function unavailable(pkg: string, path: string): string | undefined {
  if (existsSync(path) || process.getuid?.() === 0) return undefined;
  return `${path} is not installed and this user cannot install it (apt-get install -y ${pkg}; .ci/run does)`;
}

/** Fails, naming the package, when `path` is missing. */
export function requireTool(pkg: string, path: string): void {
  assert.ok(existsSync(path), `${path} is not installed: apt-get install -y ${pkg} (.ci/run installs it)`);
}

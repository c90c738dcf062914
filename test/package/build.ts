/**
 * Builds the single executable Tentacle for a test the way a release does: through
 * `npm run package:tentacle`'s script (without npm), into a folder the test chose.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runTracked } from '../support/processes.js';
import { REPO } from '../e2e/harness.js';

/** What package:tentacle prints for each file it built (see TentacleExecutable). */
export interface BuiltExecutable {
  path: string;
  sha256: string;
  bytes: number;
  version: string;
  commit: string;
  node: string;
  codeCache: boolean;
}

/** `env` is added to this process's: e.g. REEF_BUILD_VERSION for a build with another version string. */
export async function buildExecutable(arch: 'x64' | 'arm64', outDir: string, env: NodeJS.ProcessEnv = {}): Promise<BuiltExecutable> {
  const result = await runTracked(process.execPath, ['--import', 'tsx', join(REPO, 'scripts/package/package-tentacle.ts'), '--arch', arch, '--out-dir', outDir], {
    cwd: REPO,
    env: { ...process.env, ...env },
    timeoutMs: 240_000,
  });
  assert.equal(result.code, 0, `package:tentacle --arch ${arch} failed:\n${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as BuiltExecutable;
}

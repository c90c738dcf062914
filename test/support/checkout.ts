/**
 * A copy of the checkout as a fresh clone has it: the files git tracks or would track
 * (committed or not, so uncommitted work is what gets tested), without anything ignored
 * (no dist/, no node_modules). node_modules is linked from this checkout, standing in for
 * `npm ci`.
 */
import { execFileSync } from 'node:child_process';
import { cp, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO } from '../../scripts/package/build-info.js';
import { trackedTempDir } from './processes.js';

/** The copy lives in a temp folder that `stopAll()` removes. */
export async function copyCheckout(): Promise<string> {
  const clone = await trackedTempDir('reef-clone-');
  const listed = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: REPO, encoding: 'utf8' });
  // A set: during a merge, git lists a conflicted file once per side.
  for (const file of new Set(listed.split('\0').filter(Boolean))) {
    await cp(join(REPO, file), join(clone, file), { errorOnExist: true, force: false }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err; // deleted in the work tree, not yet in git
    });
  }
  await symlink(join(REPO, 'node_modules'), join(clone, 'node_modules'));
  return clone;
}

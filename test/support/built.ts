/**
 * Tests run Reef's programs as users do: `bin/reef.js` and `bin/tentacle.js`, which load the
 * compiled dist/ with plain node (so a CLI child starts in a fraction of the time tsx takes).
 * `npm test` builds dist/ first; a test file run on its own checks here, when it is loaded,
 * that dist/ is complete and no older than src/, so it never tests code that is not the
 * source in front of it.
 */
import { join } from 'node:path';
import { distState } from '../../scripts/build.js';
import { REPO } from '../../scripts/package/build-info.js';

export const REEF_BIN = join(REPO, 'bin/reef.js');
export const TENTACLE_BIN = join(REPO, 'bin/tentacle.js');

const state = await distState();
if (state.state !== 'fresh') {
  const why = state.state === 'missing' ? 'dist/ holds no complete build' : `${state.newer} is newer than the build in dist/`;
  throw new Error(`${why}: run "npm run build" first (npm test does)`);
}

/**
 * The entry point of the single executable Tentacle (scripts/package/tentacle-executable.ts
 * bundles from here): the same program as bin/tentacle.js, started unconditionally, since
 * an executable has no module URL to compare with its argv.
 */
import { runProgram } from './common.js';
import { buildTentacleProgram } from './tentacle.js';

void runProgram(buildTentacleProgram());

#!/usr/bin/env node
// `tentacle`: runs the compiled CLI (dist/cli/tentacle.js) with plain node.
import { runCompiled } from './run-compiled.js';
await runCompiled('tentacle');

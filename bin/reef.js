#!/usr/bin/env node
// `reef`: runs the compiled CLI (dist/cli/reef.js) with plain node.
import { runCompiled } from './run-compiled.js';
await runCompiled('reef');

// Shared by bin/reef.js and bin/tentacle.js: loads the compiled CLI from dist/, which
// `npm run build` writes (a git checkout) and the npm package ships. Plain JavaScript, so
// it runs before anything is built.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Imports dist/cli/<name>.js, or says in one line how to build it and exits 1. */
export async function runCompiled(name) {
  const entry = new URL(`../dist/cli/${name}.js`, import.meta.url);
  if (!existsSync(entry)) {
    const repo = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
    process.stderr.write(`error: ${name} is not built (${fileURLToPath(entry)} is missing): run "npm run build" in ${repo}\n`);
    process.exit(1);
  }
  await import(entry.href);
}

import { readFileSync } from 'node:fs';

/**
 * What a build writes in: the build (scripts/build.ts) and the bundles of `npm run package`
 * replace this identifier with a literal through esbuild's `define`, so a built Reef needs
 * no package.json beside it (a single executable has none).
 */
declare const __REEF_BUILD__: { version: string; commit: string } | undefined;

interface BuildInfo {
  /** Reef's version (package.json's, at build time). */
  readonly version: string;
  /** The git commit built from, or "source" when run from the TypeScript sources. */
  readonly commit: string;
}

function buildInfo(): BuildInfo {
  if (typeof __REEF_BUILD__ !== 'undefined') return __REEF_BUILD__;
  // Run from source (tsx): src/version.ts sits one level below package.json.
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return { version: pkg.version, commit: 'source' };
}

export const BUILD: BuildInfo = buildInfo();
/** Reef's version: the one fact every component reports (server, Tentacle, CLIs). */
export const VERSION: string = BUILD.version;

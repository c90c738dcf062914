import path from 'node:path';
import type { TentacleConfig } from './config.js';
import { OWN_HOME_ENTRIES, installPath, instanceIndexPath, tentacleRoot } from './paths.js';

/**
 * The Tentacle's own files, which file transfers must never touch whatever allowedRoots
 * say: a pushed tentacle.json once added a trusted server thumbprint at once and widened
 * the roots to "/" after a restart. Every entry covers everything below it.
 */
export interface ProtectedPaths {
  /** Never readable or writable by transfers: config, keys, certificates, workspace, logs, pid files, the program. */
  always: string[];
  /** Folders holding such files (home, the instances root): protected except inside `openings`. */
  trees: string[];
  /** Folders strictly inside a tree that transfers may use: the app folder when it lives in home. */
  openings: string[];
}

export function tentacleOwnPaths(config: TentacleConfig, configPath: string | undefined, root = tentacleRoot()): ProtectedPaths {
  const { home, app } = config;
  const inHome = OWN_HOME_ENTRIES.map((name) => path.join(home, name));
  // The config file's lock (src/tentacle/config.ts updateConfig) and the instance index's.
  const configFiles = configPath ? [configPath, `${configPath}.lock`] : [];
  const index = instanceIndexPath(root);
  const trees = [home, root];
  const openings = trees.some((tree) => isStrictlyInside(app, tree)) ? [app] : [];
  return { always: [...inHome, ...configFiles, index, `${index}.lock`, installPath], trees, openings };
}

/** true when `child` is `parent` or below it (both absolute, normalized). */
export function isWithin(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

function isStrictlyInside(child: string, parent: string): boolean {
  return child !== parent && isWithin(child, parent);
}

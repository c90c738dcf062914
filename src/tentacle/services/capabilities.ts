import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectShells, type ShellPaths } from './shells.js';

export interface Capabilities {
  tentacleVersion: string;
  os: { platform: NodeJS.Platform; release: string; arch: string };
  hostname: string;
  /** Path of each shell scripts can run with, null when missing (pwsh runs "powershell" scripts). */
  shells: ShellPaths;
  nodeVersion: string;
  /** The Tentacle's clock, so the server can spot skew. */
  time: string;
}

let version: Promise<string> | undefined;

/** What this Tentacle is and can do; the server asks before choosing how to run work. */
export class CapabilitiesService {
  async capabilities(): Promise<Capabilities> {
    return {
      tentacleVersion: await tentacleVersion(),
      os: { platform: process.platform, release: os.release(), arch: process.arch },
      hostname: os.hostname(),
      shells: { ...(await detectShells()) },
      nodeVersion: process.version,
      time: new Date().toISOString(),
    };
  }
}

/** The version in Reef's package.json, found upwards from this module (src/ or dist/). */
function tentacleVersion(): Promise<string> {
  version ??= (async () => {
    let dir = path.dirname(fileURLToPath(import.meta.url));
    for (;;) {
      try {
        const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'reef' && typeof pkg.version === 'string') return pkg.version;
      } catch {
        // no package.json here; keep walking up
      }
      const up = path.dirname(dir);
      if (up === dir) return 'unknown';
      dir = up;
    }
  })();
  return version;
}

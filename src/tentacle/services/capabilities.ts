import os from 'node:os';
import { VERSION } from '../../version.js';
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

/** What this Tentacle is and can do; the server asks before choosing how to run work. */
export class CapabilitiesService {
  async capabilities(): Promise<Capabilities> {
    return {
      tentacleVersion: VERSION,
      os: { platform: process.platform, release: os.release(), arch: process.arch },
      hostname: os.hostname(),
      shells: { ...(await detectShells()) },
      nodeVersion: process.version,
      time: new Date().toISOString(),
    };
  }
}


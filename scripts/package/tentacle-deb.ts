/**
 * reef-tentacle_<version>_<arch>.deb: the single executable Tentacle in /usr/lib/reef-tentacle,
 * `tentacle` on PATH. It ships no unit: `tentacle service --install` writes one per instance
 * (reef-tentacle-<name>.service), as on any other installation, and the maintainer scripts
 * (debian/tentacle.*) stop those on removal and delete them with the instances on purge.
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addCopyright, buildDeb, debArch, maintainerScripts } from './deb.js';
import type { LinuxArch } from './node-runtime.js';

export interface TentacleDebOptions {
  executable: string;
  arch: LinuxArch;
  version: string;
  outDir: string;
  xz?: boolean;
}

/** Where the package puts the executable; /usr/bin/tentacle links to it. */
export const TENTACLE_INSTALL_PATH = '/usr/lib/reef-tentacle/tentacle';

export function buildTentacleDeb({ executable, arch, version, outDir, xz = false }: TentacleDebOptions): string {
  const root = mkdtempSync(join(tmpdir(), 'reef-tentacle-deb-'));
  try {
    const installed = join(root, TENTACLE_INSTALL_PATH);
    mkdirSync(join(installed, '..'), { recursive: true });
    copyFileSync(executable, installed);
    chmodSync(installed, 0o755);
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    symlinkSync('../lib/reef-tentacle/tentacle', join(root, 'usr/bin/tentacle'));
    addCopyright(root, 'reef-tentacle');
    return buildDeb({
      name: 'reef-tentacle',
      version,
      arch: debArch(arch),
      summary: 'Reef Tentacle: the agent that runs Reef deployments on this machine',
      description: `The Tentacle polls a Reef server over mutual TLS (port 10943, 443 by SNI, or
WebSockets, also through HTTP proxies) or listens for it, and runs the scripts,
file transfers and health checks the server sends. One self-contained executable
with its own Node.js runtime.

Nothing runs after installation: create an instance, register it with the server
and install its service (tentacle create-instance, tentacle register-with,
tentacle service --install --start).`,
      depends: ['libc6 (>= 2.28)', 'libstdc++6', 'libgcc-s1'],
      root,
      scripts: maintainerScripts('tentacle'),
      outDir,
      compression: xz ? 'xz' : 'gzip',
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

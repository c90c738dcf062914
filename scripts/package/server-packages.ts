/**
 * The server for machines without npm: reef-server-<version>-linux-x64.tar.gz (the
 * self-contained tree of server-runtime.ts, unpacked anywhere) and reef-server_<version>_amd64.deb
 * (the same tree in /usr/lib/reef-server, `reef` on PATH, the systemd unit, settings in
 * /etc/reef/server.env, data in /var/lib/reef, the `reef` system user).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderServerUnit, SERVER_SERVICE_DEFAULTS, SERVER_UNIT_NAME } from '../../src/server/service-unit.js';
import { serverEnvironmentTemplate } from '../../src/cli/reef-server.js';
import { REPO } from './build-info.js';
import { addCopyright, buildDeb, maintainerScripts } from './deb.js';
import { stageServerTree } from './server-runtime.js';

export interface ServerPackagesOptions {
  version: string;
  outDir: string;
  xz?: boolean;
}

/** Where the package puts the tree; /usr/bin/reef links to its launcher. */
export const SERVER_INSTALL_DIR = '/usr/lib/reef-server';

export function serverTarballName(version: string): string {
  return `reef-server-${version}-linux-x64.tar.gz`;
}

/** Builds the tarball and the .deb; returns their paths. */
export function buildServerPackages({ version, outDir, xz = false }: ServerPackagesOptions): string[] {
  const work = mkdtempSync(join(tmpdir(), 'reef-server-package-'));
  try {
    const top = `reef-server-${version}`;
    stageServerTree({ repo: REPO, out: join(work, top) });
    mkdirSync(outDir, { recursive: true });
    const tarball = join(outDir, serverTarballName(version));
    // Owned by root, in name order: the same tree gives the same listing on any machine.
    execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', xz ? '-cJf' : '-czf', tarball, '-C', work, top]);

    const root = join(work, 'deb');
    mkdirSync(join(root, 'usr/lib'), { recursive: true });
    renameSync(join(work, top), join(root, SERVER_INSTALL_DIR));
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    symlinkSync('../lib/reef-server/bin/reef', join(root, 'usr/bin/reef'));
    mkdirSync(join(root, 'lib/systemd/system'), { recursive: true });
    writeFileSync(
      join(root, 'lib/systemd/system', SERVER_UNIT_NAME),
      renderServerUnit({ command: ['/usr/bin/reef'], ...SERVER_SERVICE_DEFAULTS }),
    );
    mkdirSync(join(root, 'etc/reef'), { recursive: true });
    writeFileSync(join(root, SERVER_SERVICE_DEFAULTS.environmentFile), serverEnvironmentTemplate(), { mode: 0o600 });
    addCopyright(root, 'reef-server');
    const deb = buildDeb({
      name: 'reef-server',
      version,
      arch: 'amd64',
      summary: 'Reef deployment server',
      description: `Reef pushes scripts, packages and health checks to Tentacles on machines that
accept no inbound connections, and streams their logs back, from a web portal,
a REST API and the reef CLI. Embedded SQLite store by default; several nodes
share work through PostgreSQL. Ships its own Node.js runtime.

Nothing starts after installation: set the options in /etc/reef/server.env,
then run: systemctl enable --now reef-server`,
      depends: ['libc6 (>= 2.28)', 'libstdc++6', 'libgcc-s1', 'adduser'],
      root,
      conffiles: [SERVER_SERVICE_DEFAULTS.environmentFile],
      scripts: maintainerScripts('server'),
      outDir,
      compression: xz ? 'xz' : 'gzip',
    });
    return [tarball, deb];
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

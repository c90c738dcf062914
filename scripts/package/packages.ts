/**
 * Everything a release ships (`npm run package`, scripts/package/package.ts), into dist/packages/, from this checkout
 * and with no network once the arm64 Node runtime is in the cache (node-runtime.ts):
 *
 *   reef-tentacle-<version>-linux-{x64,arm64}   single executable Tentacles
 *   reef-tentacle_<version>_{amd64,arm64}.deb    the same, as Debian packages
 *   reef-server-<version>-linux-x64.tar.gz       the server with its own Node runtime
 *   reef-server_<version>_amd64.deb              the same, as a Debian package
 *   SHA256SUMS
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { buildDist } from '../build.js';
import { buildStamp, PACKAGES_DIR } from './build-info.js';
import { buildServerPackages } from './server-packages.js';
import { buildTentacleDeb } from './tentacle-deb.js';
import { buildTentacleExecutable } from './tentacle-executable.js';
import { LINUX_ARCHES, type LinuxArch } from './node-runtime.js';

export interface PackageOptions {
  arches?: readonly LinuxArch[];
  outDir?: string;
  /** xz instead of gzip for the .deb files and the tarball. */
  xz?: boolean;
  log?: (line: string) => void;
}

/** Builds every package; returns their paths (SHA256SUMS last). */
export async function buildPackages(options: PackageOptions = {}): Promise<string[]> {
  const { arches = LINUX_ARCHES, outDir = PACKAGES_DIR, xz = false, log = () => undefined } = options;
  const stamp = buildStamp();
  await buildDist();
  log(`dist/ built (Reef ${stamp.version}, commit ${stamp.commit})`);
  const built: string[] = [];
  for (const arch of arches) {
    const exe = await buildTentacleExecutable({ arch, outDir, stamp, log });
    built.push(exe.path, buildTentacleDeb({ executable: exe.path, arch, version: stamp.version, outDir, xz }));
    log(`Tentacle ${arch}: ${basename(exe.path)} and its .deb`);
  }
  built.push(...buildServerPackages({ version: stamp.version, outDir, xz }));
  log('server: tarball and .deb');
  built.push(await writeChecksums(outDir));
  return built;
}

/** SHA256SUMS of every package in the folder, in `sha256sum -c` format. */
async function writeChecksums(dir: string): Promise<string> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile() && /^reef-/.test(e.name))
    .map((e) => e.name)
    .sort();
  const lines: string[] = [];
  for (const name of names) lines.push(`${await sha256(join(dir, name))}  ${name}`);
  const out = join(dir, 'SHA256SUMS');
  await writeFile(out, `${lines.join('\n')}\n`);
  return out;
}

function sha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject);
  });
}

/**
 * The Tentacle versions the server distributes: the single executables in its downloads
 * folder (`reef-tentacle-<version>-linux-<arch>`, docs/operations.md "Machines install from
 * the server"), which `reef machines upgrade` streams to Tentacles and against which each
 * machine is shown "upgrade available".
 */
import type { Readable } from 'node:stream';
import type { JsonObject } from '../store/types.js';
import type { DownloadsFolder } from '../downloads/folder.js';
import { compareVersions } from './versions.js';

export { compareVersions } from './versions.js';

export const TENTACLE_ARCHES = ['x64', 'arm64'] as const;
export type TentacleArch = (typeof TENTACLE_ARCHES)[number];

export interface TentacleRelease {
  version: string;
  arch: TentacleArch;
  /** The file's name in the downloads folder. */
  name: string;
  size: number;
  /** Lowercase hex. */
  sha256: string;
}

/** Matches the names scripts/package/tentacle-executable.ts gives (tentacleExecutableName). */
const RELEASE_NAME = /^reef-tentacle-(\d[A-Za-z0-9.+~-]*)-linux-(x64|arm64)$/;

export function parseReleaseName(name: string): { version: string; arch: TentacleArch } | null {
  const m = RELEASE_NAME.exec(name);
  return m ? { version: m[1]!, arch: m[2] as TentacleArch } : null;
}

/** What the server can hand out: the releases, and a release's bytes from an offset. */
export interface TentacleReleases {
  list(): Promise<TentacleRelease[]>;
  /** The release's bytes from `offset`; rejects if it is gone or changed (its SHA-256 differs). */
  open(release: TentacleRelease, offset: number): Promise<Readable>;
}

/** A server without a downloads folder distributes nothing. */
export const NO_RELEASES: TentacleReleases = {
  list: async () => [],
  open: async (release) => {
    throw new Error(`${release.name} is not distributed by this server`);
  },
};

/** The releases in a downloads folder. */
export function releasesIn(folder: Pick<DownloadsFolder, 'list' | 'open'>): TentacleReleases {
  return {
    async list() {
      const { files } = await folder.list();
      const releases: TentacleRelease[] = [];
      for (const file of files) {
        const parsed = parseReleaseName(file.name);
        if (parsed) releases.push({ ...parsed, name: file.name, size: file.size, sha256: file.sha256 });
      }
      return releases.sort((a, b) => compareVersions(a.version, b.version));
    },
    async open(release, offset) {
      const file = await folder.open(release.name);
      if (!file) throw new Error(`${release.name} is no longer in the downloads folder`);
      if (file.sha256 !== release.sha256) {
        await file.handle.close();
        throw new Error(`${release.name} changed in the downloads folder since the upgrade started (SHA-256 ${file.sha256}, not ${release.sha256})`);
      }
      return file.handle.createReadStream({ start: offset, autoClose: true });
    },
  };
}

/** The newest release for `arch` (or the one of `version`), if the server has one. */
export function releaseFor(releases: readonly TentacleRelease[], arch: string, version?: string): TentacleRelease | undefined {
  const forArch = releases.filter((r) => r.arch === arch);
  if (version !== undefined) return forArch.find((r) => r.version === version);
  return forArch.reduce<TentacleRelease | undefined>((best, r) => (!best || compareVersions(r.version, best.version) > 0 ? r : best), undefined);
}

/** The machine's architecture as its Tentacle reported it (capabilities: platform linux, arch x64). */
export function machineArch(platform: JsonObject | null): string | undefined {
  if (!platform || platform.platform !== 'linux' || typeof platform.arch !== 'string') return undefined;
  return platform.arch;
}

/** The newest release newer than the machine's Tentacle for its architecture, if any. */
export function availableUpgrade(
  machine: { tentacleVersion: string | null; platform: JsonObject | null },
  releases: readonly TentacleRelease[],
): TentacleRelease | undefined {
  const arch = machineArch(machine.platform);
  if (!arch || !machine.tentacleVersion) return undefined;
  const newest = releaseFor(releases, arch);
  return newest && compareVersions(newest.version, machine.tentacleVersion) > 0 ? newest : undefined;
}

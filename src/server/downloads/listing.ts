import { formatBytes } from '../../format.js';
import { exampleFile, fetchCommand } from './commands.js';
import type { DownloadsListing } from './folder.js';
import { DOWNLOADS_PATH } from './names.js';

/**
 * What `reef server run` prints at start about the downloads: each file with its size and
 * SHA-256 and the command a machine fetches one with, or one line saying the folder is
 * empty (or missing) and what to put there. Lines are indented to sit in the banner.
 */
export function describeDownloads(listing: DownloadsListing, baseUrl: string, pin: string): string[] {
  const at = `${baseUrl}${DOWNLOADS_PATH}/`;
  if (listing.files.length === 0) {
    const state = listing.problem ?? (listing.exists ? `${listing.dir} is empty` : `${listing.dir} does not exist`);
    return [`  Downloads:       none (${state}); put reef-tentacle-<version>-linux-<arch> files and .deb packages there to serve them at ${at} (no restart needed)`];
  }
  const width = Math.max(...listing.files.map((f) => f.name.length));
  const sizes = listing.files.map((f) => formatBytes(f.size));
  const sizeWidth = Math.max(...sizes.map((s) => s.length));
  const count = listing.files.length === 1 ? '1 file' : `${listing.files.length} files`;
  return [
    `  Downloads:       ${count} from ${listing.dir} at ${at}`,
    ...listing.files.map((f, i) => `    ${f.name.padEnd(width)}  ${sizes[i]!.padStart(sizeWidth)}  sha256 ${f.sha256}`),
    `  A machine fetches one checking this server's public key (no CA needed) and the file's SHA-256:`,
    `    ${fetchCommand(baseUrl, pin, exampleFile(listing.files.map((f) => f.name))!)}`,
  ];
}

import { fileURLToPath } from 'node:url';

/** The `reef` entry point, bin/reef.js. */
export const reefBinPath = fileURLToPath(new URL('../../bin/reef.js', import.meta.url));

/** How Reef starts itself again (the server's systemd unit written by `reef server service --install`). */
export const reefCommand: readonly string[] = [process.execPath, reefBinPath];

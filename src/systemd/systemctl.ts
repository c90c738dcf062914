import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ReefError } from '../errors.js';
import { writeFileAtomic } from '../durable-fs.js';

/** Where units written by an administrator (and by `--install`) live. */
export const SYSTEMD_UNIT_DIR = '/etc/systemd/system';

/** True when systemd is the running init system (sd_booted(3) checks the same folder). */
export function systemdIsRunning(): boolean {
  return existsSync('/run/systemd/system');
}

/** Runs systemctl, throwing its first line of complaint when it fails. */
export function systemctl(...args: string[]): void {
  const result = spawnSync('systemctl', args, { encoding: 'utf8', timeout: 120_000 });
  if (result.error) {
    throw new ReefError('REEF_COMMAND_FAILED', `Could not run systemctl ${args.join(' ')}: ${result.error.message}.`, { cause: result.error });
  }
  if (result.status !== 0) {
    const detail = (result.stderr || result.stdout).trim().split('\n')[0] ?? '';
    throw new ReefError('REEF_COMMAND_FAILED', `systemctl ${args.join(' ')} failed (exit ${result.status})${detail ? `: ${detail}` : ''}.`);
  }
}

/** `systemctl is-active --quiet`: true when the unit runs. */
export function unitIsActive(unit: string): boolean {
  return spawnSync('systemctl', ['is-active', '--quiet', unit], { timeout: 30_000 }).status === 0;
}

/** Writes a unit file (0644, atomically), reloads systemd and enables the unit. Returns its path. */
export async function installUnit(name: string, text: string, unitDir = SYSTEMD_UNIT_DIR): Promise<string> {
  const path = join(unitDir, name);
  await writeFileAtomic(path, text, { mode: 0o644, dirMode: 0o755 });
  systemctl('daemon-reload');
  systemctl('enable', name);
  return path;
}

/** Stops and disables a unit, removes its file and reloads systemd. False when it was not installed. */
export async function uninstallUnit(name: string, unitDir = SYSTEMD_UNIT_DIR): Promise<boolean> {
  const path = join(unitDir, name);
  if (!existsSync(path)) return false;
  systemctl('disable', '--now', name);
  await rm(path, { force: true });
  systemctl('daemon-reload');
  return true;
}

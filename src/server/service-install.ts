import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir } from 'node:fs/promises';
import { ReefError } from '../errors.js';
import { writeFileAtomic } from '../durable-fs.js';
import { installUnit, SYSTEMD_UNIT_DIR, systemdIsRunning, uninstallUnit } from '../systemd/systemctl.js';
import { renderServerUnit, SERVER_UNIT_NAME, type ServerUnitSpec } from './service-unit.js';

/**
 * `reef server service --install | --uninstall`: what a package's maintainer scripts would
 * do, for a server installed from a tarball or npm. Install creates the service account and
 * the data directory, writes the environment file (commented defaults) unless one exists,
 * writes and enables the unit; it does not start the server, so the administrator can set
 * it up first. Uninstall stops, disables and removes the unit and keeps the account, the
 * data and the settings (as `apt remove` would).
 */

export interface ServerServiceOptions {
  /** Where the unit goes (tests). */
  unitDir?: string;
}

function requireRootWithSystemd(action: string): void {
  if (process.getuid?.() !== 0) {
    throw new ReefError('REEF_SERVICE_NEEDS_ROOT', `${action} the Reef server service needs root (sudo); "reef server service --print" shows the unit without it.`);
  }
  if (!systemdIsRunning()) {
    throw new ReefError(
      'REEF_NO_SYSTEMD',
      `systemd is not running on this machine (no /run/systemd/system), so there is nothing to hand the service to. Save the output of "reef server service --print" as /etc/systemd/system/${SERVER_UNIT_NAME} in a machine image, or run "reef server run" under your own supervisor.`,
    );
  }
}

function run(command: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 60_000 });
  if (result.error) throw new ReefError('REEF_COMMAND_FAILED', `Could not run ${command}: ${result.error.message}.`, { cause: result.error });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The account's uid and gid, creating it (a system account with no login and no home of its own) if needed. */
function ensureServiceUser(user: string, home: string): { uid: number; gid: number; created: boolean } {
  const lookup = () => run('getent', ['passwd', user]);
  let entry = lookup();
  let created = false;
  if (entry.status !== 0) {
    const added = run('useradd', ['--system', '--user-group', '--home-dir', home, '--no-create-home', '--shell', '/usr/sbin/nologin', '--comment', 'Reef server', user]);
    if (added.status !== 0) {
      throw new ReefError('REEF_COMMAND_FAILED', `useradd could not create the account "${user}" (exit ${added.status}): ${added.stderr.trim() || added.stdout.trim()}`);
    }
    created = true;
    entry = lookup();
  }
  const [, , uid, gid] = entry.stdout.trim().split(':');
  if (entry.status !== 0 || uid === undefined || gid === undefined) {
    throw new ReefError('REEF_COMMAND_FAILED', `The account "${user}" cannot be looked up (getent passwd ${user} exited ${entry.status}).`);
  }
  if (Number(uid) === 0) throw new ReefError('REEF_INVALID_ARGUMENT', `The account "${user}" has uid 0; the server needs an unprivileged account.`);
  return { uid: Number(uid), gid: Number(gid), created };
}

export async function installServerService(spec: ServerUnitSpec, environmentTemplate: string, options: ServerServiceOptions = {}): Promise<string[]> {
  const unit = renderServerUnit(spec); // a spec no unit can hold fails here, before anything changes
  requireRootWithSystemd('Installing');
  const done: string[] = [];
  const account = ensureServiceUser(spec.user, spec.dataDir);
  done.push(account.created ? `Created the system account "${spec.user}".` : `Using the existing account "${spec.user}".`);
  if (!unit.includes('\nStateDirectory=')) {
    // Outside /var/lib systemd does not create the folder; ReadWritePaths= needs it to exist.
    await mkdir(spec.dataDir, { recursive: true, mode: 0o700 });
    await chown(spec.dataDir, account.uid, account.gid);
    done.push(`Data directory ${spec.dataDir} belongs to "${spec.user}".`);
  }
  if (existsSync(spec.environmentFile)) {
    done.push(`Kept the settings in ${spec.environmentFile}.`);
  } else {
    // Read by systemd as root before the server starts: 0600 keeps a database password in it private.
    await writeFileAtomic(spec.environmentFile, environmentTemplate, { mode: 0o600, dirMode: 0o755 });
    done.push(`Wrote the settings file ${spec.environmentFile} (all defaults; edit it before starting).`);
  }
  const path = await installUnit(SERVER_UNIT_NAME, unit, options.unitDir ?? SYSTEMD_UNIT_DIR);
  done.push(`Installed and enabled ${path}. Start it with: systemctl start ${SERVER_UNIT_NAME}`);
  return done;
}

export async function uninstallServerService(options: ServerServiceOptions = {}): Promise<string[]> {
  requireRootWithSystemd('Uninstalling');
  const removed = await uninstallUnit(SERVER_UNIT_NAME, options.unitDir ?? SYSTEMD_UNIT_DIR);
  return [
    removed ? `Stopped, disabled and removed ${SERVER_UNIT_NAME}.` : `${SERVER_UNIT_NAME} was not installed.`,
    'The account, the data directory and the settings file are kept; remove them by hand if they are no longer needed.',
  ];
}

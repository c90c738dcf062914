import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { isSea } from 'node:sea';
import { fileURLToPath } from 'node:url';
import { ReefError } from '../errors.js';

/**
 * Where a machine's Tentacle instances are recorded. One root per machine account:
 * `$REEF_TENTACLE_ROOT` wins (tests, containers, side-by-side installs); root uses
 * `/etc/reef/tentacle` like any system service; anyone else gets
 * `$XDG_CONFIG_HOME/reef/tentacle` (`~/.config/reef/tentacle` when XDG_CONFIG_HOME is unset),
 * so a developer can try Reef without sudo.
 */
/** Root's instances root: configuration under /etc, as for any system service. */
export const SYSTEM_ROOT = '/etc/reef/tentacle';
/** Where the system root's instances keep their data (certificate, workspace, logs, applications). */
export const SYSTEM_DATA = '/var/lib/reef-tentacle';

export function tentacleRoot(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.REEF_TENTACLE_ROOT?.trim();
  if (fromEnv) return resolve(fromEnv);
  if (process.getuid?.() === 0) return SYSTEM_ROOT;
  const xdg = env.XDG_CONFIG_HOME?.trim();
  return join(xdg ? resolve(xdg) : join(homedir(), '.config'), 'reef', 'tentacle');
}

/** `<root>/instances.json`: instance name -> config file path. */
export function instanceIndexPath(root = tentacleRoot()): string {
  return join(root, 'instances.json');
}

/** The folder a new instance gets when `create-instance` is not given `--config`/`--home`. */
export function defaultInstanceDir(name: string, root = tentacleRoot()): string {
  return join(root, 'instances', name);
}

/**
 * The home a new instance gets when `create-instance` is given neither `--home` nor
 * `--config`: under /var/lib for the system root (the FHS keeps /etc for configuration),
 * else beside its config file.
 */
export function defaultHome(name: string, root = tentacleRoot()): string {
  return root === SYSTEM_ROOT ? join(SYSTEM_DATA, name) : defaultInstanceDir(name, root);
}

export function defaultConfigPath(name: string, root = tentacleRoot()): string {
  return join(defaultInstanceDir(name, root), 'tentacle.json');
}

/** Files an instance keeps in its home folder. */
export const homeFiles = {
  certBaseName: 'comms', // comms.cert.pem + comms.key.pem, written by pki/store
  // During a certificate rotation (certificate-rotation.ts): the one made next, the one switched from.
  nextCertBaseName: 'comms-next',
  previousCertBaseName: 'comms-previous',
  workspace: 'workspace',
  logs: 'logs',
  log: join('logs', 'tentacle.log'),
  pid: 'tentacle.pid',
  agentPid: 'agent.pid', // the supervised agent, so one orphaned by a killed supervisor can be found
  upgradeState: 'upgrade.json', // the last self-upgrade (src/tentacle/upgrade/state.ts)

  serviceMarker: 'service.json',
} as const;

/** Everything the Tentacle keeps in its home: deleted with the instance, never reachable by a file transfer. */
export const OWN_HOME_ENTRIES: readonly string[] = [
  `${homeFiles.certBaseName}.cert.pem`,
  `${homeFiles.certBaseName}.key.pem`,
  `${homeFiles.nextCertBaseName}.cert.pem`,
  `${homeFiles.nextCertBaseName}.key.pem`,
  `${homeFiles.previousCertBaseName}.cert.pem`,
  `${homeFiles.previousCertBaseName}.key.pem`,
  homeFiles.workspace,
  homeFiles.logs,
  homeFiles.pid,
  homeFiles.agentPid,
  homeFiles.upgradeState,
  homeFiles.serviceMarker,
];

export function defaultAppDir(home: string): string {
  return join(home, 'Applications');
}

/**
 * True in the single executable Tentacle (`npm run package`): its code has no files of its
 * own, and import.meta.url is not set, so nothing below may resolve paths from it there.
 */
const singleExecutable = isSea();

/** The CLI entry point: bin/tentacle.js, or the single executable itself. */
export const tentacleBinPath = singleExecutable ? process.execPath : fileURLToPath(new URL('../../bin/tentacle.js', import.meta.url));

/** How the Tentacle starts itself again (the agent from its supervisor or a systemd unit). */
export const tentacleCommand: readonly string[] = singleExecutable ? [process.execPath] : [process.execPath, tentacleBinPath];

/**
 * The hidden command (`tentacle supervise --instance N`) that runs the supervised service,
 * and the word in its command line that pid checks look for (src/tentacle/supervisor.ts).
 */
export const SUPERVISOR_MARKER = 'supervise';

/** What the Tentacle runs from, which file transfers must never write: the package folder, or the single executable. */
export const installPath = singleExecutable ? process.execPath : resolve(fileURLToPath(new URL('../..', import.meta.url)));

/**
 * Instance names end up in file names and systemd unit names (`reef-tentacle-<name>.service`),
 * so they are restricted to characters that need no escaping anywhere.
 */
const INSTANCE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function validateInstanceName(name: string): string {
  if (!INSTANCE_NAME.test(name)) {
    throw new ReefError(
      'REEF_INVALID_ARGUMENT',
      `"${name}" is not a valid instance name: use 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit.`,
    );
  }
  return name;
}

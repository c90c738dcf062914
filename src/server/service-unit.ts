import { posix } from 'node:path';
import { ReefError } from '../errors.js';
import { checkUnitPath, renderUnitFile, unitCommandLine, unitPathValue, unitPathWord } from '../systemd/unit-syntax.js';

/**
 * The systemd unit of the Reef server: the only definition of its text. `reef server service
 * --install | --print` renders it for the running installation; the Debian package renders
 * it with `/usr/bin/reef` and the defaults below. docs/operations.md has a table of every
 * hardening option, used or left out, and why; keep it in step with this file.
 *
 * The server gets its settings from an environment file (`REEF_HTTPS_PORT=443`, ...; every
 * `reef server run` flag has a variable, see src/cli/reef-server.ts), read by systemd as
 * root, so it may be 0600 and hold a PostgreSQL password.
 */

export const SERVER_UNIT_NAME = 'reef-server.service';

export interface ServerUnitSpec {
  /** How Reef starts: `['/usr/bin/reef']`, or node and bin/reef.js. `server run --data <dataDir>` is appended. */
  command: readonly string[];
  /** The unprivileged account it runs as. */
  user: string;
  /** The data directory: certificate, SQLite store, uploaded files. */
  dataDir: string;
  /** The server's settings as REEF_* variables; optional (`-`): without it the defaults apply. */
  environmentFile: string;
}

/** What the Debian package uses, and `reef server service` unless told otherwise. */
export const SERVER_SERVICE_DEFAULTS = {
  user: 'reef',
  dataDir: '/var/lib/reef',
  environmentFile: '/etc/reef/server.env',
} as const;

/** useradd's default NAME_REGEX, which also keeps the name out of every quoting question. */
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

export function checkServiceUser(user: string): string {
  if (!USER_NAME.test(user)) {
    throw new ReefError('REEF_INVALID_ARGUMENT', `"${user}" is not a valid service user name: use up to 32 lower-case letters, digits, "_" or "-", starting with a letter or "_".`);
  }
  if (user === 'root') {
    throw new ReefError('REEF_INVALID_ARGUMENT', 'The Reef server does not run as root: give it an account of its own (the default is "reef").');
  }
  return user;
}

/** Folders the unit hides from the server (ProtectHome=, PrivateTmp=) or that are no place for data. */
const HIDDEN = ['/home', '/root', '/run/user', '/tmp', '/var/tmp', '/proc', '/sys', '/dev'];

function checkDataDir(dataDir: string): string {
  checkUnitPath(dataDir, 'The data directory');
  const hiddenBy = HIDDEN.find((dir) => dataDir === dir || dataDir.startsWith(`${dir}/`));
  if (hiddenBy !== undefined || dataDir === '/') {
    throw new ReefError(
      'REEF_INVALID_ARGUMENT',
      `The data directory ${dataDir} cannot be used by the service: the unit hides ${hiddenBy ?? 'nothing, but / is not a data directory'} from the server (ProtectHome=, PrivateTmp=). Use a folder such as /var/lib/reef or /srv/reef.`,
    );
  }
  return dataDir;
}

/**
 * A data directory under /var/lib (with a plain name) is the service's StateDirectory: systemd creates it (0700)
 * and gives it to the service user at every start. Anywhere else it must exist, owned by the
 * user (`--install` sees to that), and is made writable with ReadWritePaths.
 */
function dataDirSettings(dataDir: string): [string, string][] {
  const state = posix.relative('/var/lib', dataDir);
  // StateDirectory= takes a list of names, without quoting: plain ones only.
  if (!state.startsWith('..') && /^[A-Za-z0-9_.@+-][A-Za-z0-9_.@+/-]*$/.test(state)) {
    return [
      ['StateDirectory', state],
      ['StateDirectoryMode', '0700'],
    ];
  }
  return [['ReadWritePaths', unitPathWord(dataDir, 'The data directory')]];
}

export function renderServerUnit(spec: ServerUnitSpec): string {
  const user = checkServiceUser(spec.user);
  const dataDir = checkDataDir(spec.dataDir);
  const command = [...spec.command, 'server', 'run', '--data', dataDir];
  return renderUnitFile(
    [
      'Reef server. Its settings: REEF_* variables in the EnvironmentFile below (see "reef server run --help").',
      `Change unit settings with "systemctl edit ${SERVER_UNIT_NAME}" rather than here.`,
    ],
    [
      [
        'Unit',
        [
          ['Description', 'Reef deployment server'],
          ['Wants', 'network-online.target'],
          'postgresql.service only orders the start when a local PostgreSQL holds the store.',
          ['After', 'network-online.target postgresql.service'],
        ],
      ],
      [
        'Service',
        [
          ['Type', 'exec'],
          ['User', user],
          ['Group', user],
          ['ExecStart', unitCommandLine(command, 'the Reef server command')],
          'systemctl reload: the portal reads its CA certificate again (--https-certificate); Tentacles stay connected.',
          "The shell's own kill: /bin/kill comes from procps, which a minimal system lacks ($MAINPID is set for this command).",
          ['ExecReload', `/bin/sh -c 'kill -HUP "$MAINPID"'`],
          ['EnvironmentFile', `-${unitPathValue(spec.environmentFile, 'The environment file')}`],
          ...dataDirSettings(dataDir),
          ['WorkingDirectory', unitPathValue(dataDir, 'The data directory')],
          ['Restart', 'on-failure'],
          ['RestartSec', '5'],
          ['TimeoutStopSec', '30'],
          ['UMask', '0077'],
          ['LimitNOFILE', '65536'],
          ['SyslogIdentifier', 'reef-server'],
          'Ports below 1024 (the front door on 443) without root; nothing else is kept.',
          ['AmbientCapabilities', 'CAP_NET_BIND_SERVICE'],
          ['CapabilityBoundingSet', 'CAP_NET_BIND_SERVICE'],
          'Hardening (docs/operations.md, "Server hardening"): read-only system, no devices,',
          'no kernel or cgroup changes, only IP and local sockets, the usual service system calls.',
          ['NoNewPrivileges', 'yes'],
          ['ProtectSystem', 'strict'],
          ['ProtectHome', 'yes'],
          ['PrivateTmp', 'yes'],
          ['PrivateDevices', 'yes'],
          ['PrivateMounts', 'yes'],
          ['DevicePolicy', 'closed'],
          ['ProtectKernelTunables', 'yes'],
          ['ProtectKernelModules', 'yes'],
          ['ProtectKernelLogs', 'yes'],
          ['ProtectControlGroups', 'yes'],
          ['ProtectClock', 'yes'],
          ['ProtectHostname', 'yes'],
          ['ProtectProc', 'invisible'],
          ['ProcSubset', 'pid'],
          ['RestrictAddressFamilies', 'AF_INET AF_INET6 AF_UNIX'],
          ['RestrictNamespaces', 'yes'],
          ['RestrictRealtime', 'yes'],
          ['RestrictSUIDSGID', 'yes'],
          ['LockPersonality', 'yes'],
          ['RemoveIPC', 'yes'],
          ['KeyringMode', 'private'],
          ['SystemCallArchitectures', 'native'],
          ['SystemCallFilter', '@system-service'],
          ['SystemCallFilter', '~@privileged @resources'],
          ['SystemCallErrorNumber', 'EPERM'],
        ],
      ],
      ['Install', [['WantedBy', 'multi-user.target']]],
    ],
  );
}

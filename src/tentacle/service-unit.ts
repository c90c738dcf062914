import { checkUnitPath, renderUnitFile, unitCommandLine, unitEnvironment, unitPathValue } from '../systemd/unit-syntax.js';
import { tentacleCommand, validateInstanceName } from './paths.js';

/**
 * The systemd unit of a Tentacle instance, written by `tentacle service --install` and shown
 * by `tentacle service --print`. docs/operations.md has a table of every hardening option,
 * used or left out, and why; keep it in step with this file.
 */

export function tentacleUnitName(instance: string): string {
  return `reef-tentacle-${validateInstanceName(instance)}.service`;
}

export interface TentacleUnitSpec {
  instance: string;
  /** The instances root, passed as REEF_TENTACLE_ROOT. */
  root: string;
  /** The instance's home: its working directory. */
  home: string;
  /** How the Tentacle starts itself (default `tentacleCommand`: node + bin/tentacle.js, or the single executable). */
  command?: readonly string[];
}

/**
 * The agent runs the server's deployment scripts as root, and they must be able to do what
 * an administrator does to install and run software: install packages (with setuid files,
 * kernel modules, maintainer scripts), write anywhere under /etc, /opt, /usr, /var and home
 * folders, manage services, users, mounts, devices, sysctls and containers. So only the
 * protections no such step needs are on. Whatever a unit forbids, a script can still ask
 * systemd to run something outside it (systemctl, systemd-run): for the Tentacle these are
 * guard rails, not a boundary.
 */
export function renderTentacleUnit(spec: TentacleUnitSpec): string {
  const name = tentacleUnitName(spec.instance);
  const command = [...(spec.command ?? tentacleCommand), 'agent', '--instance', spec.instance];
  return renderUnitFile(
    [`Reef Tentacle, instance ${spec.instance}: written by "tentacle service --install", removed by "tentacle service --uninstall".`,
      `Change settings with "systemctl edit ${name}" rather than here.`],
    [
      [
        'Unit',
        [
          ['Description', `Reef Tentacle (instance ${spec.instance})`],
          ['Wants', 'network-online.target'],
          ['After', 'network-online.target'],
          'Keep restarting however often it fails: a machine that drops off the fleet cannot be reached to fix it.',
          ['StartLimitIntervalSec', '0'],
        ],
      ],
      [
        'Service',
        [
          ['Type', 'exec'],
          ['ExecStart', unitCommandLine(command, 'the Tentacle command')],
          ['Environment', unitEnvironment('REEF_TENTACLE_ROOT', checkUnitPath(spec.root, 'The Tentacle instances root'))],
          ['WorkingDirectory', unitPathValue(spec.home, "The Tentacle's home")],
          ['Restart', 'always'],
          ['RestartSec', '5'],
          'Stop and restart only the agent: running scripts are detached and carry on, and the',
          'next agent adopts them (src/tentacle/services/scripts/README.md). A script that',
          'upgrades or restarts the Tentacle itself is not killed by it.',
          ['KillMode', 'process'],
          ['TimeoutStopSec', '30'],
          "Scripts create files as an administrator's shell would (0644/0755); the Tentacle's",
          'own files get explicit modes (0600/0700).',
          ['UMask', '0022'],
          ['LimitNOFILE', '65536'],
          'Hardening: only what no deployment step needs (docs/operations.md, "Tentacle hardening").',
          ['ProtectKernelLogs', 'yes'],
          ['RestrictRealtime', 'yes'],
          ['LockPersonality', 'yes'],
          ['SystemCallFilter', '~@obsolete'],
          ['SyslogIdentifier', 'reef-tentacle'],
        ],
      ],
      ['Install', [['WantedBy', 'multi-user.target']]],
    ],
  );
}

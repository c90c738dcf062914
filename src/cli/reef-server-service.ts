import type { Command } from 'commander';
import { ReefError } from '../errors.js';
import { installServerService, uninstallServerService } from '../server/service-install.js';
import { renderServerUnit, SERVER_SERVICE_DEFAULTS, SERVER_UNIT_NAME, type ServerUnitSpec } from '../server/service-unit.js';
import { absolutePath, note, runAction } from './common.js';
import { reefCommand } from './reef-bin.js';

/**
 * The environment file of the server service: one commented-out line per `reef server run`
 * option that a variable can set, taken from the options themselves (their `.env()`), so
 * the file lists exactly what the server honours. The Debian package ships the same text.
 */
export function environmentTemplate(run: Command): string {
  const lines = [
    `# Settings of the Reef server service (${SERVER_UNIT_NAME}): one NAME=value per line.`,
    '# systemd reads this file as root before the server starts; keep it mode 0600 when it',
    '# holds a database password. A line left commented out keeps the default. Flags in the',
    '# unit win over these; these win over a REEF_CONFIG JSON file. The data directory is set',
    '# in the unit (--data). After a change: systemctl restart reef-server',
  ];
  for (const option of run.options) {
    // The unit passes --data itself (its sandbox opens exactly that folder), so REEF_HOME would do nothing here.
    if (!option.envVar || option.long === '--data') continue;
    lines.push('', `# ${option.long}: ${option.description}`, `#${option.envVar}=`);
  }
  lines.push('', '# Log level: debug, info (default), warn or error.', '#REEF_LOG_LEVEL=info');
  return `${lines.join('\n')}\n`;
}

interface ServiceOpts {
  install?: boolean;
  uninstall?: boolean;
  print?: boolean;
  user: string;
  data: string;
  environmentFile: string;
}

/** `reef server service`: the systemd unit of this installation (see src/server/service-unit.ts). */
export function registerServerServiceCommand(server: Command, run: Command): void {
  server
    .command('service')
    .description(`run the server as the systemd service ${SERVER_UNIT_NAME}, under an unprivileged account`)
    .option('--install', 'create the account, the data directory and the settings file if missing, write and enable the unit (root); does not start it')
    .option('--uninstall', 'stop, disable and remove the unit (root); keeps the account, the data and the settings')
    .option('--print', 'print the unit, and do nothing else (no root needed)')
    .option('--user <name>', 'account the server runs as', SERVER_SERVICE_DEFAULTS.user)
    .option('--data <dir>', 'data directory', SERVER_SERVICE_DEFAULTS.dataDir)
    // Not --env-file: Node 20 reads that option anywhere on its command line, also after the script.
    .option('--environment-file <file>', 'settings file with REEF_* variables (see "reef server run --help")', SERVER_SERVICE_DEFAULTS.environmentFile)
    .action(
      runAction(async (opts: ServiceOpts) => {
        const chosen = [opts.install, opts.uninstall, opts.print].filter(Boolean).length;
        if (chosen !== 1) throw new ReefError('REEF_INVALID_ARGUMENT', 'Pass exactly one of --install, --uninstall or --print.');
        const spec: ServerUnitSpec = {
          command: reefCommand,
          user: opts.user,
          dataDir: absolutePath(opts.data, '--data'),
          environmentFile: absolutePath(opts.environmentFile, '--environment-file'),
        };
        if (opts.print) {
          process.stdout.write(renderServerUnit(spec));
          return;
        }
        const lines = opts.install ? await installServerService(spec, environmentTemplate(run)) : await uninstallServerService();
        for (const line of lines) note(line);
      }),
    );
}

import type { Command } from 'commander';
import { ReefError } from '../errors.js';
import type { ProxySettings } from '../tentacle/config.js';
import { tentacleRoot } from '../tentacle/paths.js';
import { addInstanceOption, addOptionAlias, note, parseBoolean, parsePort, runAction } from './common.js';

interface ProxyOpts {
  instance: string;
  proxyEnable?: string;
  proxyHost?: string;
  proxyPort?: string;
  proxyUsername?: string;
  proxyPassword?: string;
}

/**
 * `tentacle polling-proxy` (the HTTP CONNECT proxy comms go through) and `tentacle proxy`
 * (the one REST calls go through while registering), with Octopus's option names.
 * Without either, HTTPS_PROXY and NO_PROXY from the environment apply.
 */
export function registerProxyCommands(program: Command): void {
  for (const [name, key, what] of [
    ['polling-proxy', 'pollingProxy', 'polling connections to the server'],
    ['proxy', 'proxy', 'REST calls to the server (register-with and friends)'],
  ] as const) {
    const command = addInstanceOption(
      program
        .command(name)
        .description(`set the HTTP proxy for ${what}; "--proxyEnable false" turns proxies off, even HTTPS_PROXY`)
        .option('--proxyEnable <true|false>', 'use a proxy (true) or never (false)')
        .option('--proxyHost <host>', 'proxy host; when enabled without one, HTTPS_PROXY from the environment is used')
        .option('--proxyPort <port>', 'proxy port')
        .option('--proxyUsername <user>', 'user for the proxy\'s basic authentication')
        .option('--proxyPassword <password>', 'password for the proxy\'s basic authentication'),
    );
    addOptionAlias(command, '--proxy-enable <true|false>', 'proxyEnable');
    addOptionAlias(command, '--proxy-host <host>', 'proxyHost');
    addOptionAlias(command, '--proxy-port <port>', 'proxyPort');
    addOptionAlias(command, '--proxy-username <user>', 'proxyUsername');
    addOptionAlias(command, '--proxy-password <password>', 'proxyPassword');
    command.action(
      runAction(async (opts: ProxyOpts) => {
        const settings = proxySettings(opts);
        // Loaded here: the config code (zod) would slow every other command's start.
        const { updateConfig } = await import('../tentacle/config.js');
        await updateConfig(opts.instance, (config) => ({ ...config, [key]: settings }), tentacleRoot());
        note(
          settings.enabled === false
            ? `No proxy for ${what}, whatever the environment says.`
            : settings.host
              ? `Using the HTTP proxy ${settings.host}:${settings.port}${settings.username ? ` as ${settings.username}` : ''} for ${what}.`
              : `Using the environment's proxy (HTTPS_PROXY, NO_PROXY) for ${what}.`,
        );
      }),
    );
  }
}

function proxySettings(opts: ProxyOpts): ProxySettings {
  const enabled = opts.proxyEnable === undefined ? opts.proxyHost !== undefined : parseBoolean(opts.proxyEnable, '--proxyEnable');
  if (!enabled) {
    if (opts.proxyHost !== undefined) throw new ReefError('REEF_INVALID_ARGUMENT', '--proxyHost was given with --proxyEnable false; leave one of them out.');
    return { enabled: false };
  }
  if ((opts.proxyHost === undefined) !== (opts.proxyPort === undefined)) {
    throw new ReefError('REEF_INVALID_ARGUMENT', '--proxyHost and --proxyPort go together.');
  }
  if (opts.proxyPassword !== undefined && opts.proxyUsername === undefined) {
    throw new ReefError('REEF_INVALID_ARGUMENT', '--proxyPassword needs --proxyUsername.');
  }
  return {
    enabled: true,
    ...(opts.proxyHost !== undefined ? { host: opts.proxyHost.trim(), port: parsePort(opts.proxyPort!, '--proxyPort') } : {}),
    ...(opts.proxyUsername !== undefined ? { username: opts.proxyUsername, password: opts.proxyPassword ?? '' } : {}),
  };
}

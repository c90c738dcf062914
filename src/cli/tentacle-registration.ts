import { Option, type Command } from 'commander';
import { ReefError } from '../errors.js';
import type { CommsStyle, ServerApiOptions } from '../tentacle/registration.js';
import { addInstanceOption, addOptionAlias, collect, note, parsePort, printLine, runAction } from './common.js';

/**
 * `tentacle register-with | register-worker | deregister-from | deregister-worker | poll-server`.
 * Spellings follow Octopus Tentacle (`--apiKey`, `--workerpool`, `--publicHostName`), with
 * kebab-case aliases. stdout carries the machine id only; everything else goes to stderr.
 */

/** Registration pulls in the API client and certificate code, so it loads only when used. */
const registration = () => import('../tentacle/registration.js');

interface InstanceOpts {
  instance: string;
}

interface ServerOpts extends InstanceOpts {
  server: string;
  /** Mandatory everywhere but registration, which takes --token instead. */
  apiKey: string;
  serverThumbprint?: string;
  caFile?: string;
  resolve?: string[];
}

interface CarrierOpts {
  serverCommsPort?: string;
  serverCommsAddress?: string;
  serverWebSocket?: string;
}

interface RegisterOpts extends ServerOpts, CarrierOpts {
  token?: string;
  commsStyle?: string;
  name?: string;
  publicHostName?: string;
  force?: boolean;
  overComms?: boolean;
  environment?: string[];
  role?: string[];
  workerpool?: string[];
}

export function registerRegistrationCommands(program: Command): void {
  const target = serverOptions(
    program.command('register-with').description('register this machine with a Reef server as a deployment target'),
    { token: true },
  );
  registrationOptions(target)
    .option('--environment <name>', 'environment the target belongs to (repeatable; required unless --token, whose environments are the default)', collect)
    .option('--role <name>', 'role of the target (repeatable; required unless --token, whose roles are the default)', collect);
  addOptionAlias(target, '--env <name>', 'environment', collect);
  target.action(runAction((opts: RegisterOpts) => registerCommand(opts, 'target')));

  const worker = serverOptions(program.command('register-worker').description('register this machine with a Reef server as a worker'), { token: true });
  registrationOptions(worker).option('--workerpool <name>', 'worker pool the worker joins (repeatable; required unless --token, whose pools are the default)', collect);
  addOptionAlias(worker, '--worker-pool <name>', 'workerpool', collect);
  addOptionAlias(worker, '--workerPool <name>', 'workerpool', collect);
  worker.action(runAction((opts: RegisterOpts) => registerCommand(opts, 'worker')));

  for (const [name, kind] of [
    ['deregister-from', 'deployment target'],
    ['deregister-worker', 'worker'],
  ] as const) {
    serverOptions(
      program
        .command(name)
        .description(`remove this ${kind} from a Reef server, stop polling that server and stop trusting its certificate`),
    ).action(runAction((opts: ServerOpts) => deregisterCommand(opts, kind)));
  }

  const poll = carrierOptions(
    serverOptions(program.command('poll-server').description('poll one more server node (its comms certificate becomes trusted); registers nothing')),
  );
  poll.action(runAction((opts: ServerOpts & CarrierOpts) => pollServerCommand(opts)));
}

/** How a polling Tentacle reaches the server: the comms port, 443 by SNI, or a WebSocket. */
function carrierOptions(command: Command): Command {
  command
    .option('--server-comms-port <port>', `the server's comms port to poll (default: the port the server reports, else 10943)`)
    .option('--server-comms-address <url>', 'poll over HTTPS port 443 instead: https://polling.example.com[:port] (SNI is its host)')
    .option('--server-web-socket <url>', 'poll over a secure WebSocket instead: wss://example.com/reef/comms');
  addOptionAlias(command, '--serverCommsPort <port>', 'serverCommsPort');
  addOptionAlias(command, '--serverCommsAddress <url>', 'serverCommsAddress');
  addOptionAlias(command, '--serverWebSocket <url>', 'serverWebSocket');
  return command;
}

function carrierChoice(opts: CarrierOpts) {
  return {
    ...(opts.serverCommsPort !== undefined ? { serverCommsPort: parsePort(opts.serverCommsPort, '--server-comms-port') } : {}),
    ...(opts.serverCommsAddress !== undefined ? { serverCommsAddress: opts.serverCommsAddress } : {}),
    ...(opts.serverWebSocket !== undefined ? { serverWebSocket: opts.serverWebSocket } : {}),
  };
}

/**
 * --server, --apiKey (or REEF_API_KEY, which keeps the key out of `ps`), --server-thumbprint
 * or --ca-file, --instance. Registration also takes --token (or REEF_JOIN_TOKEN) in place of
 * --apiKey.
 */
function serverOptions(command: Command, accepts: { token?: boolean } = {}): Command {
  const apiKey = new Option('--apiKey <key>', `an API key for the Reef server (alias --api-key)${accepts.token ? '; or use --token' : ''}`).env('REEF_API_KEY');
  command.requiredOption('--server <url>', 'the Reef portal URL, https://host[:port]').addOption(accepts.token ? apiKey : apiKey.makeOptionMandatory());
  if (accepts.token) {
    command.addOption(
      new Option('--token <token>', 'a join token (reef tokens create): registers only into its scope, and can do nothing else').env('REEF_JOIN_TOKEN'),
    );
  }
  command
    .option(
      '--server-thumbprint <thumbprint>',
      'thumbprint of the portal certificate, printed by "reef server show-thumbprint"; needed unless the certificate is valid for a public CA or --ca-file',
    )
    .addOption(
      new Option('--ca-file <file>', "trust a portal certificate this CA issued (PEM), besides the public CAs; the comms certificate is pinned all the same").env('REEF_CA_FILE'),
    )
    .option('--resolve <host:port:address>', 'connect to this address for host:port, like curl --resolve (repeatable; kept in the config)', collect);
  addOptionAlias(command, '--api-key <key>', 'apiKey');
  addOptionAlias(command, '--serverThumbprint <thumbprint>', 'serverThumbprint');
  return addInstanceOption(command);
}

function registrationOptions(command: Command): Command {
  command
    .option('--comms-style <style>', 'TentacleActive (the Tentacle polls the server) or TentaclePassive (the server dials the Tentacle)', 'TentacleActive')
    .option('--name <name>', 'machine name on the server (default: this host name)')
    .option('--publicHostName <host>', 'TentaclePassive: the host name the server dials (default: this host name)')
    .option('--force', 'replace an existing registration with the same name or thumbprint')
    .option(
      '--over-comms',
      "register over the comms carrier chosen below (its own TLS, pinned to --server-thumbprint, end to end to the server) instead of the portal's HTTPS: works behind a TLS-terminating proxy",
    );
  addOptionAlias(command, '--overComms', 'overComms');
  addOptionAlias(command, '--commsStyle <style>', 'commsStyle');
  addOptionAlias(command, '--public-host-name <host>', 'publicHostName');
  return carrierOptions(command);
}

function parseCommsStyle(value: string | undefined): CommsStyle {
  const text = (value ?? 'TentacleActive').trim().toLowerCase();
  if (text === 'tentacleactive' || text === 'polling') return 'TentacleActive';
  if (text === 'tentaclepassive' || text === 'listening') return 'TentaclePassive';
  throw new ReefError('REEF_INVALID_ARGUMENT', `--comms-style must be TentacleActive (polling) or TentaclePassive (listening), not "${value}".`);
}

function apiOptions(opts: ServerOpts & { token?: string }): ServerApiOptions {
  return {
    server: opts.server,
    ...(opts.token !== undefined ? { joinToken: opts.token } : { apiKey: opts.apiKey }),
    ...(opts.serverThumbprint !== undefined ? { serverThumbprint: opts.serverThumbprint } : {}),
    ...(opts.caFile !== undefined ? { caFile: opts.caFile } : {}),
    ...(opts.resolve ? { resolve: opts.resolve } : {}),
  };
}

/** Commander's own words for a missing option, plus what --token changes. */
function missing(option: string): ReefError {
  return new ReefError('REEF_INVALID_ARGUMENT', `required option '${option}' not specified (or register with --token, whose scope supplies it)`);
}

async function registerCommand(opts: RegisterOpts, kind: 'target' | 'worker'): Promise<void> {
  if (opts.token !== undefined && opts.apiKey && process.env.REEF_API_KEY !== opts.apiKey) {
    throw new ReefError('REEF_INVALID_ARGUMENT', 'Give --apiKey or --token, not both.');
  }
  if (opts.token === undefined) {
    if (!opts.apiKey) throw new ReefError('REEF_INVALID_ARGUMENT', "required option '--apiKey <key>' or '--token <token>' not specified");
    if (kind === 'target' && !opts.environment?.length) throw missing('--environment <name>');
    if (kind === 'target' && !opts.role?.length) throw missing('--role <name>');
    if (kind === 'worker' && !opts.workerpool?.length) throw missing('--workerpool <name>');
  }
  const commsStyle = parseCommsStyle(opts.commsStyle);
  const { register } = await registration();
  const result = await register({
    ...apiOptions(opts),
    instance: opts.instance,
    kind,
    commsStyle,
    ...carrierChoice(opts),
    ...(kind === 'target' ? { environments: opts.environment ?? [], roles: opts.role ?? [] } : { workerPools: opts.workerpool ?? [] }),
    ...(opts.name !== undefined ? { name: opts.name } : {}),
    ...(opts.publicHostName !== undefined ? { publicHostName: opts.publicHostName } : {}),
    force: opts.force === true,
    overComms: opts.overComms === true,
  });
  const m = result.machine;
  const how = result.polled
    ? `polling ${result.polled.address}`
    : `listening on port ${result.config.listen.port} (the server dials ${m.endpoint?.host ?? '?'}:${m.endpoint?.port ?? '?'})`;
  const membership = kind === 'target' ? `environments ${m.environments.join(', ')}; roles ${m.roles.join(', ')}` : `worker pools ${m.workerPools.join(', ')}`;
  note(
    `${result.created ? 'Registered' : 'Re-registered'} "${m.name}" with ${result.config.registration?.serverUrl ?? opts.server} as a ${kind === 'target' ? 'deployment target' : 'worker'} ` +
      `(${membership}), ${how}; trusting server certificate ${result.server.commsThumbprint}. A running agent picks this up by itself.`,
  );
  printLine(m.id);
}

async function deregisterCommand(opts: ServerOpts, kind: string): Promise<void> {
  const { deregister } = await registration();
  const result = await deregister({ ...apiOptions(opts), instance: opts.instance });
  note(
    result.found
      ? `Removed this ${kind} (${result.thumbprint}) from ${opts.server}.`
      : `${opts.server} had no machine with this Tentacle's thumbprint (${result.thumbprint}); cleaned up the local configuration only.`,
  );
  if (result.removedServers.length) note(`No longer polling ${result.removedServers.map((s) => s.address).join(', ')}.`);
  if (result.removedTrust.length) note(`No longer trusting ${result.removedTrust.join(', ')}.`);
}

async function pollServerCommand(opts: ServerOpts & CarrierOpts): Promise<void> {
  const { pollServer } = await registration();
  const { polled, server } = await pollServer({ ...apiOptions(opts), instance: opts.instance, ...carrierChoice(opts) });
  note(`Polling ${polled.address} (server node ${server.nodeName}), trusting its certificate ${polled.thumbprint}. A running agent picks this up by itself.`);
}

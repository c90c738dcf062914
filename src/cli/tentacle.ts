import { Command } from 'commander';
import { readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { arch, platform } from 'node:os';
import { isSea } from 'node:sea';
import { errorMessage, ReefError } from '../errors.js';
import type { CertificateResult } from '../tentacle/certificate.js';
import type { TentacleConfig } from '../tentacle/config.js';
import { homeFiles, SUPERVISOR_MARKER, tentacleBinPath, tentacleRoot } from '../tentacle/paths.js';
import { BUILD } from '../version.js';
import {
  absolutePath,
  addInstanceOption,
  addOptionAlias,
  collect,
  configureProgram,
  isEntryPoint,
  note,
  parseBoolean,
  parseFormat,
  parsePort,
  printJson,
  printLine,
  runAction,
  runProgram,
} from './common.js';
import { registerProxyCommands } from './tentacle-proxy.js';
import { registerRegistrationCommands } from './tentacle-registration.js';
import { UPGRADE_WATCH_COMMAND } from '../tentacle/upgrade/commands.js';

/**
 * The `tentacle` command line. Command and option names follow Octopus Tentacle, with kebab
 * aliases where Octopus uses camelCase. stdout carries only results (thumbprints, lists,
 * JSON); progress and notes go to stderr.
 */

/**
 * Code that loads only when a command needs it, so that `tentacle version` and `--help`
 * start about as fast as node itself (`npm run bench -- startup`, test/cli/startup.test.ts):
 * the config schemas (zod), the service and supervisor code (pino) and above all the
 * certificate code with its X.509 libraries (about half a second) are most of a start's cost.
 */
const configCode = () => import('../tentacle/config.js');
const instanceCode = () => import('../tentacle/instances.js');
const serviceCode = () => import('../tentacle/service.js');
const supervisorCode = () => import('../tentacle/supervisor.js');
const certificates = () => import('../tentacle/certificate.js');
const identityStore = () => import('../pki/identity-files.js');

async function loadInstance(name: string) {
  return (await configCode()).loadInstance(name);
}

export function buildTentacleProgram(): Command {
  const program = configureProgram(new Command('tentacle'))
    .description('Reef Tentacle: the deployment agent. Run "tentacle <command> --help" for details.')
    .helpCommand(true);

  addInstanceCommands(program);
  addCertificateCommands(program);
  addConfigureCommand(program);
  addInfoCommands(program);
  addServiceCommands(program);
  registerRegistrationCommands(program);
  registerProxyCommands(program);
  return program;
}

interface InstanceOpts {
  instance: string;
}

function addInstanceCommands(program: Command): void {
  addInstanceOption(
    program
      .command('create-instance')
      .description('create a named Tentacle instance: an entry in the instance index and a config file')
      .option('--config <path>', 'config file path (default <root>/instances/<name>/tentacle.json; an existing file is adopted)')
      .option('--home <dir>', 'home folder for certificate, workspace and logs (default: the config file folder)'),
  ).action(
    runAction(async (opts: InstanceOpts & { config?: string; home?: string }) => {
      const { createInstance } = await instanceCode();
      const result = await createInstance(opts.instance, {
        ...(opts.config !== undefined ? { config: absolutePath(opts.config, '--config') } : {}),
        ...(opts.home !== undefined ? { home: absolutePath(opts.home, '--home') } : {}),
      });
      note(
        result.created
          ? `Created instance "${result.name}" with config file ${result.configPath} and home ${result.config.home}.`
          : `Instance "${result.name}" already exists with config file ${result.configPath}; nothing changed.`,
      );
    }),
  );

  addInstanceOption(
    program
      .command('delete-instance')
      .description('remove an instance from the index; its files stay unless --purge')
      .option(
        '--purge',
        'also delete the config file, certificate, workspace and logs (deployed applications are never deleted)',
      ),
  ).action(
    runAction(async (opts: InstanceOpts & { purge?: boolean }) => {
      const { deleteInstance } = await instanceCode();
      const removed = await deleteInstance(opts.instance, { purge: opts.purge === true });
      note(
        opts.purge
          ? `Deleted instance "${removed.name}" and its files.`
          : `Deleted instance "${removed.name}" from the index; its files remain (re-add with "tentacle create-instance --instance ${removed.name} --config ${removed.configPath}").`,
      );
    }),
  );

  addInstanceOption(
    program
      .command('list-instances')
      .description('list instances, one per line: name and config file')
      .option('--json', 'print JSON')
      .option('--format <format>', 'text or json'),
  ).action(
    runAction(async (opts: { json?: boolean; format?: string }) => {
      const format = opts.json ? 'json' : parseFormat(opts.format, ['text', 'json'] as const, 'text');
      const instances = await (await instanceCode()).listInstances();
      if (format === 'json') printJson(instances);
      else for (const i of instances) printLine(`${i.name}\t${i.configPath}`);
    }),
  );
}

function addCertificateCommands(program: Command): void {
  const report = (result: CertificateResult, what: string) => {
    if (!result.created) note(`A certificate already exists; kept it (--if-blank).`);
    else note(what);
    if (result.replaced) {
      note(`Replaced certificate ${result.replaced}: servers that trusted it must be given the new thumbprint (re-run register-with).`);
    }
    printLine(result.thumbprint);
  };

  addInstanceOption(
    program
      .command('new-certificate')
      .description('generate a new ECDSA P-256 certificate for the instance (replaces the current one) and print its thumbprint')
      .option('--if-blank', 'only generate one if the instance has none yet'),
  ).action(
    runAction(async (opts: InstanceOpts & { ifBlank?: boolean }) => {
      const { config } = await loadInstance(opts.instance);
      const { newCertificate } = await certificates();
      report(await newCertificate(config, { ifBlank: opts.ifBlank === true }), 'Generated a new certificate.');
    }),
  );

  const importCommand = program
    .command('import-certificate')
    .description('import a certificate with its private key (PEM, or PKCS#12 .pfx/.p12) and print its thumbprint')
    .requiredOption('--from-file <file>', 'PEM file holding certificate and private key, or a .pfx/.p12 file')
    .option('--pfx-password <password>', 'password of the PKCS#12 file or of an encrypted PEM key');
  addOptionAlias(importCommand, '--fromFile <file>', 'fromFile');
  addOptionAlias(importCommand, '--pfxPassword <password>', 'pfxPassword');
  addInstanceOption(importCommand).action(
    runAction(async (opts: InstanceOpts & { fromFile: string; pfxPassword?: string }) => {
      const { config } = await loadInstance(opts.instance);
      const { importCertificateFile } = await certificates();
      report(await importCertificateFile(config, absolutePath(opts.fromFile, '--from-file'), opts.pfxPassword), 'Imported the certificate.');
    }),
  );

  const showCommand = program
    .command('show-thumbprint')
    .description("print the instance's certificate thumbprint (SHA-256)")
    .option('--export-file <file>', 'also write it to this file')
    .option('--format <format>', 'text (the thumbprint alone) or json', 'text');
  addOptionAlias(showCommand, '--exportFile <file>', 'exportFile');
  addInstanceOption(showCommand).action(
    runAction(async (opts: InstanceOpts & { exportFile?: string; format?: string }) => {
      const format = parseFormat(opts.format, ['text', 'json'] as const, 'text');
      const { config } = await loadInstance(opts.instance);
      const thumbprint = await (await certificates()).currentThumbprint(config);
      const text = format === 'json' ? `${JSON.stringify({ thumbprint })}\n` : `${thumbprint}\n`;
      if (opts.exportFile !== undefined) {
        const file = absolutePath(opts.exportFile, '--export-file');
        await writeFile(file, text);
        note(`Wrote the thumbprint to ${file}.`);
      }
      process.stdout.write(text);
    }),
  );
}

interface ConfigureOpts extends InstanceOpts {
  resetTrust?: boolean;
  trust?: string[];
  removeTrust?: string[];
  port?: string;
  noListen?: string | boolean;
  listenIpAddress?: string;
  home?: string;
  app?: string;
  allowPath?: string[];
  scriptRetentionDays?: string;
}

function parseRetentionDays(value: string): number {
  const days = Number(value);
  if (!Number.isFinite(days) || days <= 0 || days > 3650) {
    throw new ReefError('REEF_INVALID_ARGUMENT', `--script-retention-days must be a number of days above 0 (at most 3650), such as 7 or 0.5, not "${value}".`);
  }
  return days;
}

function addConfigureCommand(program: Command): void {
  const command = program
    .command('configure')
    .description('change instance settings: trusted servers, listening, folders')
    .option('--reset-trust', 'remove all trusted server thumbprints (applied before --trust)')
    .option('--trust <thumbprint>', 'trust a server thumbprint (repeatable)', collect)
    .option('--remove-trust <thumbprint>', 'stop trusting a server thumbprint (repeatable)', collect)
    .option('--port <port>', 'port to listen on in listening mode; also turns listening on')
    .option('--noListen [bool]', 'true: do not listen (polling only); false: listen (alias --no-listen)')
    .option('--listenIpAddress <address>', 'IP address to listen on (alias --listen-ip-address)')
    .option('--home <dir>', 'home folder (certificate, workspace, logs); the certificate is copied along')
    .option('--app <dir>', 'application folder packages are deployed to')
    .option('--allow-path <dir>', 'add a folder push-file may write into (repeatable)', collect)
    .option('--script-retention-days <days>', 'days a finished script the server has not collected is kept (default 7)');
  addOptionAlias(command, '--no-listen [bool]', 'noListen');
  addOptionAlias(command, '--listen-ip-address <address>', 'listenIpAddress');
  addOptionAlias(command, '--resetTrust', 'resetTrust');
  addOptionAlias(command, '--removeTrust <thumbprint>', 'removeTrust', collect);
  addOptionAlias(command, '--allowPath <dir>', 'allowPath', collect);
  addInstanceOption(command).action(runAction(async (opts: ConfigureOpts) => configure(opts)));
}

async function configure(opts: ConfigureOpts): Promise<void> {
  // Everything is validated before anything is written, so a bad value changes nothing.
  const { normalizeThumbprint } = await import('../pki/thumbprint.js'); // node:crypto: only for this command
  const trust = (opts.trust ?? []).map(normalizeThumbprint);
  const removeTrust = (opts.removeTrust ?? []).map(normalizeThumbprint);
  const port = opts.port !== undefined ? parsePort(opts.port, '--port') : undefined;
  const noListen = opts.noListen !== undefined ? parseBoolean(opts.noListen, '--noListen') : undefined;
  if (opts.listenIpAddress !== undefined && isIP(opts.listenIpAddress.trim()) === 0) {
    throw new ReefError('REEF_INVALID_ARGUMENT', `--listenIpAddress must be an IPv4 or IPv6 address such as 0.0.0.0 or ::, not "${opts.listenIpAddress}".`);
  }
  const home = opts.home !== undefined ? absolutePath(opts.home, '--home') : undefined;
  const app = opts.app !== undefined ? absolutePath(opts.app, '--app') : undefined;
  const allowPaths = (opts.allowPath ?? []).map((p) => absolutePath(p, '--allow-path'));
  const retentionDays = opts.scriptRetentionDays !== undefined ? parseRetentionDays(opts.scriptRetentionDays) : undefined;
  const nothing =
    !opts.resetTrust && !trust.length && !removeTrust.length && port === undefined && noListen === undefined &&
    opts.listenIpAddress === undefined && home === undefined && app === undefined && !allowPaths.length &&
    retentionDays === undefined;
  if (nothing) throw new ReefError('REEF_INVALID_ARGUMENT', 'Nothing to change: pass at least one option (see "tentacle configure --help").');

  const { updateConfig } = await configCode();
  const { moveApp, moveHome, prepareFolders } = await instanceCode();
  const before = await loadInstance(opts.instance);
  const notes: string[] = [];
  const updated = await updateConfig(opts.instance, (config) => {
    let next: TentacleConfig = { ...config, listen: { ...config.listen } };
    if (opts.resetTrust) {
      next.trust = [];
      notes.push('Removed all trusted thumbprints.');
    }
    for (const tp of removeTrust) {
      if (next.trust.includes(tp)) next.trust = next.trust.filter((t) => t !== tp);
      else notes.push(`${tp} was not trusted; nothing to remove.`);
    }
    for (const tp of trust) if (!next.trust.includes(tp)) next.trust = [...next.trust, tp];
    if (port !== undefined) next.listen = { ...next.listen, port, enabled: true };
    if (noListen !== undefined) next.listen = { ...next.listen, enabled: !noListen };
    if (opts.listenIpAddress !== undefined) next.listen = { ...next.listen, host: opts.listenIpAddress.trim() };
    if (home !== undefined) next = moveHome(next, home);
    if (app !== undefined) next = moveApp(next, app);
    for (const dir of allowPaths) if (!next.allowedRoots.includes(dir)) next.allowedRoots = [...next.allowedRoots, dir];
    if (retentionDays !== undefined) next.scriptRetentionDays = retentionDays;
    return next;
  });
  await prepareFolders(updated);
  if (updated.home !== before.config.home) await carryCertificate(before.config.home, updated.home, notes);
  for (const line of notes) note(line);
  note(`Updated ${before.configPath}.`);
}

/** The certificate lives in home, so moving home must not silently give the instance a new identity. */
async function carryCertificate(fromHome: string, toHome: string, notes: string[]): Promise<void> {
  const { identityFiles, loadIdentity, saveIdentity } = await identityStore();
  const target = identityFiles(toHome, homeFiles.certBaseName);
  const hasTarget = await readFile(target.certFile).then(() => true, () => false);
  if (hasTarget) {
    notes.push(`${toHome} already has a certificate; using it.`);
    return;
  }
  const identity = await loadIdentity(fromHome, homeFiles.certBaseName).catch(() => null);
  if (identity) {
    await saveIdentity(toHome, identity, homeFiles.certBaseName);
    notes.push(`Copied the certificate (${identity.thumbprint}) to ${toHome}.`);
  }
}

function addInfoCommands(program: Command): void {
  addInstanceOption(
    program.command('show-configuration').description('print the instance configuration as JSON (proxy passwords hidden)'),
  ).action(
    runAction(async (opts: InstanceOpts) => {
      const { config, configPath } = await loadInstance(opts.instance);
      // A damaged certificate should not hide the rest of the configuration.
      const thumbprint = await (await certificates()).thumbprintIfAny(config).catch((err: unknown) => {
        note(`warning: ${errorMessage(err)}`);
        return null;
      });
      printJson({ ...(await configCode()).redactConfig(config), configFile: configPath, thumbprint });
    }),
  );

  addInstanceOption(
    program
      .command('version')
      .description('print the Reef Tentacle and Node.js versions')
      .option('--format <format>', 'text or json', 'text'),
  ).action(
    runAction(async (opts: { format?: string }) => {
      const format = parseFormat(opts.format, ['text', 'json'] as const, 'text');
      const info = { version: BUILD.version, commit: BUILD.commit, node: process.version, platform: platform(), arch: arch() };
      if (format === 'json') printJson(info);
      else printLine(`Reef Tentacle ${info.version} (commit ${info.commit}, Node.js ${info.node}, ${info.platform}-${info.arch})`);
    }),
  );
}

function addServiceCommands(program: Command): void {
  addInstanceOption(
    program
      .command('service')
      .description('run the instance in the background: a systemd unit where systemd runs, otherwise a supervised process')
      .option('--install', 'install the service (systemd: write and enable the unit)')
      .option('--uninstall', 'stop and remove the service')
      .option('--start', 'start the service')
      .option('--stop', 'stop the service')
      .option('--restart', 'restart the service')
      .option('--print', 'print the systemd unit --install would write, and do nothing else (no root needed)'),
  ).action(
    runAction(async (opts: InstanceOpts & { install?: boolean; uninstall?: boolean; start?: boolean; stop?: boolean; restart?: boolean; print?: boolean }) => {
      const { config } = await loadInstance(opts.instance);
      const { instance: _instance, print, ...actions } = opts;
      const { runServiceActions, systemdUnitText } = await serviceCode();
      if (print) {
        if (Object.values(actions).some(Boolean)) {
          throw new ReefError('REEF_INVALID_ARGUMENT', '--print only shows the unit; run it without --install, --uninstall, --start, --stop or --restart.');
        }
        process.stdout.write(systemdUnitText(config));
        return;
      }
      for (const line of await runServiceActions(config, actions)) note(line);
    }),
  );

  addInstanceOption(program.command('agent').description('run the agent in the foreground (what the service runs)')).action(
    runAction(async (opts: InstanceOpts) => {
      // Loaded only here: the other commands start faster without the comms stack.
      const { runAgent } = await import('../tentacle/agent.js');
      await runAgent(opts.instance);
    }),
  );

  // Internal: the process `service --start` leaves running in supervised mode.
  addInstanceOption(program.command(SUPERVISOR_MARKER, { hidden: true }).description('supervise the agent (internal)')).action(
    runAction(async (opts: InstanceOpts) => (await supervisorCode()).runSupervisor(opts.instance, { root: tentacleRoot() })),
  );

  // Internal: started detached by an agent that upgrades itself (src/tentacle/upgrade/watch.ts).
  addInstanceOption(program.command(UPGRADE_WATCH_COMMAND, { hidden: true }).description('roll an upgrade back unless it is confirmed in time (internal)')).action(
    runAction(async (opts: InstanceOpts) => (await import('../tentacle/upgrade/run-watch.js')).runUpgradeWatch(opts.instance)),
  );
}

// Run when started as the bin (bin/tentacle.js imports this module). The single executable
// has an entry of its own (src/cli/tentacle-executable.ts) and no module URL, so this stays
// quiet there; no top-level await, since the executable's bundle is CommonJS.
if (!isSea() && isEntryPoint(import.meta.url, tentacleBinPath)) void runProgram(buildTentacleProgram());

/**
 * The agent: what `tentacle agent` (and the service) runs. It serves the Tentacle's RPC
 * methods over one polling loop per configured server node and, when enabled, a listening
 * endpoint the server dials.
 *
 * Trust follows the config file while running: the file is watched, so
 * `tentacle configure --trust/--remove-trust`, `poll-server` and `deregister-from` apply
 * without a restart. A server whose thumbprint stops being trusted loses its live
 * connections at once, and every call is checked against the current trust as well.
 */
import { unwatchFile, watchFile, type Stats } from 'node:fs';
import path from 'node:path';
import { TentacleComms, type CommsLimits, type Handler, type PollTarget, type Poller, type ServiceTable } from '../comms/index.js';
import { errorMessage, ReefError } from '../errors.js';
import { createLogger, silentLogger, type Logger } from '../logging.js';
import type { CertificateIdentity } from '../pki/certificate.js';
import { CertificateRotationService, loadTentacleIdentity } from './certificate-rotation.js';
import { commonName } from './certificate.js';
import type { Thumbprint } from '../pki/thumbprint.js';
import { loadInstance, readConfigFile, type PolledServer, type TentacleConfig } from './config.js';
import { pollTargetFor } from './network.js';
import { tentacleOwnPaths } from './own-paths.js';
import { homeFiles } from './paths.js';
import { UPGRADE_RESTART_EXIT_CODE } from './supervisor.js';
import { createTentacleServices } from './rpc-services.js';
import { CapabilitiesService } from './services/capabilities.js';
import { FileService } from './services/files.js';
import { ScriptService } from './services/scripts/index.js';
import { TrustService } from './services/trust.js';
import { startUpgradeService } from './upgrade/agent.js';
import type { UpgradeService } from './upgrade/service.js';

export interface AgentOptions {
  config: TentacleConfig;
  identity: CertificateIdentity;
  logger?: Logger;
  /** The config file to follow for trust and server changes; without it the config stays as given. */
  configPath?: string;
  /** How often the config file is checked for changes. Default 1000 ms. */
  configPollMs?: number;
  limits?: Partial<CommsLimits>;
  /** Self-upgrade (the single executable only): upgrade.* calls are refused without it. */
  upgrade?: UpgradeService;
}

export interface Agent {
  comms: TentacleComms;
  /** The bound port when listening is enabled (useful with port 0). */
  listeningPort?: number;
  /** The polling loops now running, by server address. */
  readonly pollers: ReadonlyMap<string, Poller>;
  /** Re-reads the config file now (also done whenever it changes). */
  reload(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Where and how to poll one server node. Only TCP to the comms port is supported so far:
 * 'tcp://host:port' or plain 'host:port' (port defaults to 10943). Other carriers
 * (https:// over 443 with SNI, wss://) are refused here with a clear error until they exist.
 */
interface PolledNode {
  server: PolledServer;
  poller: Poller;
  /** The server thumbprint of the live connection, if any. */
  peer: Thumbprint | undefined;
}

/** How long after answering certificate.switch the agent starts presenting the new certificate. */
const SWITCH_AFTER_ANSWER_MS = 200;

export async function startAgent(options: AgentOptions): Promise<Agent> {
  const logger = options.logger ?? silentLogger;
  const { identity } = options;
  let config = options.config;
  const instance = config.instance;

  const scripts = new ScriptService({
    workspaceDir: path.join(config.home, homeFiles.workspace),
    logger,
    ...(config.scriptRetentionDays !== undefined ? { retentionMs: config.scriptRetentionDays * 24 * 3600 * 1000 } : {}),
  });
  const files = new FileService({ allowedRoots: config.allowedRoots, protect: tentacleOwnPaths(config, options.configPath), logger });
  const trust = new TrustService({
    configPath: options.configPath,
    current: () => config,
    // With a file, re-read it (the one source of truth); without, apply the change in memory.
    apply: (next) => (options.configPath ? reload() : apply(next)),
    logger,
  });
  const certificates = new CertificateRotationService({
    home: config.home,
    commonName: commonName(config),
    // After the answer to certificate.switch has gone out on the link the switch closes.
    onSwitch: (next) => void setTimeout(() => comms.setIdentity(next), SWITCH_AFTER_ANSWER_MS),
    logger,
  });
  const { upgrade } = options;
  const served = createTentacleServices({ scripts, files, capabilities: new CapabilitiesService(), trust, certificates, upgrade, logger });
  const services = guardTrust(upgrade ? confirmUpgradeOnCall(served, upgrade) : served, () => config.trust);
  const comms = new TentacleComms({ identity, services, limits: options.limits, logger, instance });
  const nodes = new Map<string, PolledNode>();
  const trusted = () => config.trust;

  const startPolling = (server: PolledServer): void => {
    let target: PollTarget;
    try {
      target = pollTargetFor(server, () => config, trusted);
    } catch (err) {
      logger.error({ server: server.address }, `not polling: ${errorMessage(err)}`);
      return;
    }
    const poller = comms.poll(target);
    const node: PolledNode = { server, poller, peer: undefined };
    poller.on('connected', (peer) => (node.peer = peer.thumbprint));
    poller.on('disconnected', () => (node.peer = undefined));
    nodes.set(server.address, node);
    logger.info({ server: server.address, thumbprint: server.thumbprint }, `polling ${target.host}:${target.port} (${target.carrier})`);
  };

  let listeningPort: number | undefined;
  try {
    for (const server of config.servers) startPolling(server);
    if (config.listen.enabled) {
      const { host, port } = config.listen;
      try {
        listeningPort = await comms.listen(port, host, (tp) => config.trust.includes(tp), trusted);
      } catch (err) {
        throw new ReefError(
          'REEF_CANNOT_LISTEN',
          `Cannot listen on ${host}:${port}: ${errorMessage(err)}. Free the port, or choose another with "tentacle configure --instance ${instance} --port <port>".`,
          { cause: err },
        );
      }
      logger.info({ host, port: listeningPort }, `listening on ${host}:${listeningPort}`);
    }
  } catch (err) {
    await comms.close();
    await scripts.close();
    throw err;
  }

  /** Applies a changed config: trust at once, servers added or removed; the rest needs a restart. */
  const apply = async (next: TentacleConfig): Promise<void> => {
    const previous = config;
    config = next;
    const removed = previous.trust.filter((tp) => !next.trust.includes(tp));
    const added = next.trust.filter((tp) => !previous.trust.includes(tp));
    if (added.length || removed.length) logger.info({ added, removed }, 'trusted server thumbprints changed');

    const wanted = new Map(next.servers.map((s) => [s.address, s]));
    const closing: Promise<void>[] = [];
    for (const [address, node] of nodes) {
      if (!wanted.has(address)) {
        logger.info({ server: address }, 'server removed from the configuration: no longer polling it');
        nodes.delete(address);
        closing.push(node.poller.close());
      } else if (node.peer && !next.trust.includes(node.peer)) {
        // Its live link was authenticated against trust that is gone: end it. The new
        // loop keeps trying, and connects again only if the thumbprint is trusted again.
        logger.warn({ server: address, thumbprint: node.peer }, 'server thumbprint no longer trusted: closing the connection');
        nodes.delete(address);
        closing.push(node.poller.close());
      } else if (added.length && !node.poller.connected) {
        // Newly trusted: try now rather than at the end of a backoff of up to a minute.
        nodes.delete(address);
        closing.push(node.poller.close());
      }
    }
    await Promise.all(closing);
    for (const server of next.servers) if (!nodes.has(server.address)) startPolling(server);

    for (const thumbprint of removed) {
      const closed = comms.disconnect(thumbprint);
      if (closed) logger.info({ thumbprint, closed }, 'closed connections of a server that is no longer trusted');
    }
    const needsRestart = (['listen', 'home', 'allowedRoots'] as const).filter((key) => JSON.stringify(previous[key]) !== JSON.stringify(next[key]));
    if (needsRestart.length) logger.warn({ changed: needsRestart }, 'these settings take effect when the agent restarts');
  };

  let closed: Promise<void> | undefined;
  let reloading: Promise<void> = Promise.resolve();
  const reload = (): Promise<void> => {
    const { configPath } = options;
    if (!configPath || closed) return Promise.resolve();
    reloading = reloading.then(async () => {
      if (closed) return;
      try {
        await apply(await readConfigFile(configPath));
      } catch (err) {
        logger.error({ file: configPath }, `config change not applied: ${errorMessage(err)}`);
      }
    });
    return reloading;
  };

  const onChange = (current: Stats, previous: Stats) => {
    if (current.mtimeMs !== previous.mtimeMs || current.ino !== previous.ino || current.size !== previous.size) void reload();
  };
  if (options.configPath) watchFile(options.configPath, { interval: options.configPollMs ?? 1000, persistent: false }, onChange);

  return {
    comms,
    listeningPort,
    get pollers() {
      return new Map([...nodes].map(([address, node]) => [address, node.poller]));
    },
    reload,
    close() {
      closed ??= (async () => {
        if (options.configPath) unwatchFile(options.configPath, onChange);
        await reloading;
        await comms.close();
        await scripts.close();
      })();
      return closed;
    },
  };

}

/**
 * Refuses calls from a peer whose thumbprint is no longer trusted. Connections are checked
 * when they are made; this makes a trust change apply to calls on links already open.
 */
function guardTrust(services: ServiceTable, trusted: () => readonly Thumbprint[]): ServiceTable {
  const guarded = new Map<string, Handler>();
  for (const [method, handler] of services) {
    guarded.set(method, async (args, ctx) => {
      if (!trusted().includes(ctx.peer.thumbprint)) {
        throw new ReefError(
          'REEF_TRUST_REVOKED',
          `This Tentacle no longer trusts the server certificate ${ctx.peer.thumbprint}; ${method} was refused.`,
        );
      }
      return handler(args, ctx);
    });
  }
  return guarded;
}

/**
 * A server reaching this agent is what confirms a pending upgrade to its version (over any
 * link: polling, listening, any carrier), so every call served confirms it first (a read
 * of the state file, once).
 */
function confirmUpgradeOnCall(services: ServiceTable, upgrade: UpgradeService): ServiceTable {
  return new Map(
    [...services].map(([method, handler]): [string, Handler] => [
      method,
      async (args, ctx) => {
        await upgrade.confirm();
        return handler(args, ctx);
      },
    ]),
  );
}

/**
 * `tentacle agent`: runs the instance in the foreground until SIGINT or SIGTERM, then
 * closes cleanly and exits 0 (the supervisor and systemd restart only non-zero exits).
 * Missing certificate or nothing to do are errors, so a misconfigured service says why.
 */
export async function runAgent(instanceName: string): Promise<void> {
  const logger = createLogger('tentacle');
  const { config, configPath } = await loadInstance(instanceName);
  const identity = await loadTentacleIdentity(
    config.home,
    `This instance has no certificate yet: run "tentacle new-certificate --instance ${instanceName}" (or "tentacle import-certificate --instance ${instanceName} --from-file <file>").`,
  );
  if (config.servers.length === 0 && !config.listen.enabled) {
    throw new ReefError(
      'REEF_NOTHING_TO_SERVE',
      `Instance "${instanceName}" has no server to poll and listening is off, so the agent has nothing to do. ` +
        `Register it with "tentacle register-with --instance ${instanceName} --server <URL> ..." (or "tentacle poll-server"), ` +
        `or turn listening on with "tentacle configure --instance ${instanceName} --port 10933".`,
    );
  }
  if (config.trust.length === 0) {
    logger.warn(`no server thumbprint is trusted yet: no server can connect until one is (tentacle configure --instance ${instanceName} --trust <thumbprint>)`);
  }

  let restartForUpgrade!: () => void;
  const stop = new Promise<NodeJS.Signals | 'upgrade'>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
    restartForUpgrade = () => resolve('upgrade');
  });
  const upgrade = await startUpgradeService({ instance: instanceName, home: config.home, logger, restart: () => restartForUpgrade() });
  // The agent runs until a signal, whatever its links do. Waiting on a promise holds nothing
  // in the event loop: if every socket is gone while a poll loop waits (a link that vanished
  // without an event), Node would exit 0 in silence, which systemd and the supervisor take
  // for a deliberate stop. Seen in CI (test/e2e/faults.test.ts: "pid ... has exited (0)").
  const keepRunning = setInterval(() => {}, 2 ** 31 - 1);
  const agent = await startAgent({ config, identity, logger, configPath, upgrade });
  logger.info({ instance: instanceName, thumbprint: identity.thumbprint }, 'agent started');
  const signal = await stop;
  clearInterval(keepRunning);
  logger.info({ signal }, 'stopping the agent');
  await agent.close();
  logger.info('agent stopped');
  // After an upgrade the service must start again (the new executable): a non-zero exit.
  const code = signal === 'upgrade' ? UPGRADE_RESTART_EXIT_CODE : 0;
  process.exitCode = code;
  // Scripts keep running by design; anything else left holding the event loop must not keep the agent alive.
  setTimeout(() => process.exit(code), 2000).unref();
}

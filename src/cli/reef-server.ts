import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { ReefError } from '../errors.js';
import { describeDownloads } from '../server/downloads/listing.js';
import { httpsBaseUrl } from '../server/downloads/commands.js';
import { DEFAULT_FILE_RETENTION_DAYS } from '../server/files/retention.js';
import { DEFAULT_LIMITS } from '../server/http/context.js';
import { parseListenAddress } from '../server/metrics/listen-address.js';
import type { RunningServer, ServerSettings } from '../server/runtime.js';
import { collect, parseBoolean, parsePort, printLine, runAction } from './common.js';
import { registerRotateCertificateCommand } from './reef-server-rotate.js';
import { environmentTemplate, registerServerServiceCommand } from './reef-server-service.js';

/** The server code (store, comms, engine) loads only for the commands that need it. */
const runtime = () => import('../server/runtime.js');

export const DEFAULT_HTTPS_PORT = 8443;
export const DEFAULT_COMMS_PORT = 10943;

/** `$REEF_HOME`, else `./.reef`. */
export function defaultDataDir(): string {
  return resolve(process.env.REEF_HOME || '.reef');
}

/** Node timers hold at most 2^31-1 ms (24.8 days); a longer (or infinite) wait would fire at once. */
export const MAX_PICKUP_TIMEOUT_SECONDS = Math.floor(0x7fffffff / 1000);

/** A failed start-up that has not ended the process by itself after this long is ended. */
const FAILED_START_EXIT_MS = 1_000;

/** The log quota is set in whole MiB or more, up to 1 TiB (beyond, it bounds nothing). */
export const MAX_LOG_QUOTA_MIB = 1024 * 1024;

/** The `--config` file's settings; its schema (zod) loads only when a file is given. */
async function readConfigFile(file: string) {
  return (await import('./reef-server-config.js')).readConfigFile(file);
}

interface RunOptions {
  data?: string;
  store?: string;
  httpsPort?: string;
  commsPort?: string;
  host?: string;
  nodeName?: string;
  filesDir?: string;
  fileRetentionDays?: string;
  downloadsDir?: string;
  pickupTimeout?: string;
  maxEventLoopDelay?: string;
  maxHandshakesInFlight?: string;
  pollingHostname?: string[];
  websocketPath?: string;
  /** true for a bare --proxy-protocol; a string from --proxy-protocol VALUE or REEF_PROXY_PROTOCOL. */
  proxyProtocol?: boolean | string;
  logQuotaMib?: string;
  lostContactLimit?: string;
  httpsCertificate?: string;
  httpsCertificateKey?: string;
  httpsCertificatePassword?: string;
  metricsListen?: string;
  apiRequestsPerMinute?: string;
  anonymousRequestsPerMinute?: string;
  config?: string;
}

/**
 * Flags win over environment variables (commander puts both in `opts`), which win over the
 * config file, which wins over defaults.
 */
export async function resolveServerSettings(opts: RunOptions): Promise<ServerSettings> {
  const file = opts.config ? await readConfigFile(resolve(opts.config)) : {};
  const settings: ServerSettings = {
    dataDir: resolve(opts.data ?? file.dataDir ?? defaultDataDir()),
    store: opts.store ?? file.store,
    httpsPort: opts.httpsPort !== undefined ? parsePort(opts.httpsPort, '--https-port') : (file.httpsPort ?? DEFAULT_HTTPS_PORT),
    commsPort: opts.commsPort !== undefined ? parsePort(opts.commsPort, '--comms-port') : (file.commsPort ?? DEFAULT_COMMS_PORT),
    host: opts.host ?? file.host,
    nodeName: opts.nodeName ?? file.nodeName,
    filesDir: opts.filesDir !== undefined || file.filesDir !== undefined ? resolve(opts.filesDir ?? file.filesDir!) : undefined,
    fileRetentionDays: opts.fileRetentionDays !== undefined ? parseDays(opts.fileRetentionDays, '--file-retention-days') : file.fileRetentionDays,
    downloadsDir: opts.downloadsDir !== undefined || file.downloadsDir !== undefined ? resolve(opts.downloadsDir ?? file.downloadsDir!) : undefined,
    pollingHostnames: opts.pollingHostname ? splitList(opts.pollingHostname) : (file.pollingHostnames ?? []),
    websocketPath: checkWebsocketPath(opts.websocketPath ?? file.websocketPath),
    proxyProtocol: opts.proxyProtocol !== undefined ? parseBoolean(opts.proxyProtocol, '--proxy-protocol (REEF_PROXY_PROTOCOL)') : (file.proxyProtocol ?? false),
    logQuotaBytes: logQuotaBytes(opts.logQuotaMib ?? file.logQuotaMiB),
    lostContactLimitMs:
      opts.lostContactLimit !== undefined
        ? 1000 * parsePositive(opts.lostContactLimit, '--lost-contact-limit (REEF_LOST_CONTACT_LIMIT)')
        : file.lostContactLimitSeconds !== undefined
          ? 1000 * file.lostContactLimitSeconds
          : undefined,
    metricsListen: metricsListen(opts.metricsListen ?? file.metricsListen),
    limits: {
      pickupTimeoutMs: 1000 * (opts.pickupTimeout !== undefined ? parsePositive(opts.pickupTimeout, '--pickup-timeout') : (file.pickupTimeoutSeconds ?? 120)),
      ...admissionBound('maxEventLoopDelayMs', opts.maxEventLoopDelay, file.maxEventLoopDelayMs, '--max-event-loop-delay (REEF_MAX_EVENT_LOOP_DELAY)'),
      ...admissionBound('maxHandshakesInFlight', opts.maxHandshakesInFlight, file.maxHandshakesInFlight, '--max-handshakes-in-flight (REEF_MAX_HANDSHAKES_IN_FLIGHT)'),
    },
    httpsCertificate: httpsCertificate(opts, file),
    apiLimits: {
      requestsPerMinutePerActor: perMinute(opts.apiRequestsPerMinute ?? file.apiRequestsPerMinute, '--api-requests-per-minute'),
      requestsPerMinutePerAddress: perMinute(opts.anonymousRequestsPerMinute ?? file.anonymousRequestsPerMinute, '--anonymous-requests-per-minute'),
    },
  };
  // Else the second listener finds its port "taken", by this very server.
  if (settings.httpsPort === settings.commsPort && settings.httpsPort !== 0) {
    throw new ReefError('REEF_INVALID_ARGUMENT', `The HTTPS port and the comms port are both ${settings.httpsPort}; give them different ports (--https-port, --comms-port).`);
  }
  return settings;
}

/** --https-certificate and its key and password; paths resolved now, since the files are read again on every reload. */
function httpsCertificate(
  opts: RunOptions,
  file: { httpsCertificate?: string; httpsCertificateKey?: string; httpsCertificatePassword?: string },
): ServerSettings['httpsCertificate'] {
  const certificate = opts.httpsCertificate ?? file.httpsCertificate;
  const key = opts.httpsCertificateKey ?? file.httpsCertificateKey;
  const password = opts.httpsCertificatePassword ?? file.httpsCertificatePassword;
  if (certificate === undefined || certificate === '') {
    if (key) throw new ReefError('REEF_INVALID_ARGUMENT', '--https-certificate-key needs --https-certificate (the certificate file) as well.');
    return undefined;
  }
  return { file: resolve(certificate), ...(key ? { keyFile: resolve(key) } : {}), ...(password !== undefined ? { password } : {}) };
}

/** REEF_POLLING_HOSTNAMES (and each --polling-hostname) may list several names, split by commas or spaces. */
function splitList(values: readonly string[]): string[] {
  return values.flatMap((value) => value.split(/[\s,]+/)).filter(Boolean);
}

function logQuotaBytes(mib: string | number | undefined): number | undefined {
  if (mib === undefined) return undefined;
  const n = Number(mib);
  if (!Number.isFinite(n) || n < 1 || n > MAX_LOG_QUOTA_MIB) {
    throw new ReefError('REEF_INVALID_ARGUMENT', `--log-quota-mib must be a number of MiB from 1 to ${MAX_LOG_QUOTA_MIB}, got "${mib}".`);
  }
  return Math.round(n * 1024 * 1024);
}

/** The most a request budget may be: past a million a minute it bounds nothing. */
export const MAX_REQUESTS_PER_MINUTE = 1_000_000;

/** The largest admission bound accepted (ms of event-loop delay, or handshakes): past it a bound bounds nothing. */
export const MAX_ADMISSION_BOUND = 1_000_000;

function perMinute(value: string | number | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_REQUESTS_PER_MINUTE) {
    throw new ReefError('REEF_INVALID_ARGUMENT', `${option} must be a whole number of requests a minute from 1 to ${MAX_REQUESTS_PER_MINUTE}, got "${value}".`);
  }
  return n;
}

function metricsListen(value: string | undefined): ServerSettings['metricsListen'] {
  return value === undefined || value === '' ? undefined : parseListenAddress(value, '--metrics-listen (REEF_METRICS_LISTEN)');
}

function checkWebsocketPath(path: string | undefined): string | undefined {
  if (path !== undefined && !/^\/[\x21-\x7e]*$/.test(path)) {
    throw new ReefError('REEF_INVALID_ARGUMENT', `--websocket-path must start with "/" and contain no spaces (got "${path}").`);
  }
  return path;
}

function parsePositive(value: string, option: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > MAX_PICKUP_TIMEOUT_SECONDS) {
    throw new ReefError('REEF_INVALID_ARGUMENT', `${option} must be a positive number of seconds up to ${MAX_PICKUP_TIMEOUT_SECONDS}, got "${value}".`);
  }
  return n;
}

/** An admission bound (docs/protocol.md, "Admission control") from its flag or the config file; absent: the default. 0 switches it off. */
function admissionBound(name: 'maxEventLoopDelayMs' | 'maxHandshakesInFlight', flag: string | undefined, fromFile: number | undefined, option: string): Record<string, number> {
  if (flag === undefined) return fromFile === undefined ? {} : { [name]: fromFile };
  const n = Number(flag);
  if (!Number.isInteger(n) || n < 0 || n > MAX_ADMISSION_BOUND) throw new ReefError('REEF_INVALID_ARGUMENT', `${option} must be a whole number from 0 (off) to ${MAX_ADMISSION_BOUND}, got "${flag}".`);
  return { [name]: n };
}

function parseDays(value: string, option: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 36500) throw new ReefError('REEF_INVALID_ARGUMENT', `${option} must be a positive number of days, got "${value}".`);
  return n;
}

/**
 * A `server run` option that an environment variable can also set, so a service manager
 * configures the server with an environment file (the unit's `EnvironmentFile=`, see
 * service-unit.ts) and `--help` names the variable.
 */
function envOption(flags: string, description: string, variable: string): Option {
  return new Option(flags, description).env(variable);
}

export function registerServerCommands(program: Command): void {
  const server = program.command('server').description('run and inspect a Reef server node');

  const run = server
    .command('run')
    .description('start the server: portal and REST API, comms listener, task engine')
    .addOption(envOption('--data <dir>', 'data directory (default ./.reef)', 'REEF_HOME'))
    .addOption(envOption('--store <url>', 'postgres://user@host/db for a PostgreSQL store (default: SQLite reef.db in the data directory)', 'REEF_STORE'))
    .addOption(envOption('--https-port <port>', `portal and API port (default ${DEFAULT_HTTPS_PORT})`, 'REEF_HTTPS_PORT'))
    .addOption(envOption('--comms-port <port>', `comms port for polling Tentacles (default ${DEFAULT_COMMS_PORT})`, 'REEF_COMMS_PORT'))
    .addOption(envOption('--host <address>', 'address to listen on (default all)', 'REEF_HOST'))
    .addOption(envOption('--node-name <name>', "this node's name, unique in a cluster (default the host name)", 'REEF_NODE_NAME'))
    .addOption(envOption('--files-dir <dir>', 'uploaded files (default <data>/files); the nodes of a cluster must share one directory', 'REEF_FILES_DIR'))
    .addOption(
      envOption(
        '--file-retention-days <days>',
        `uploaded files unused this long, and needed by no unfinished task, are deleted (default ${DEFAULT_FILE_RETENTION_DAYS})`,
        'REEF_FILE_RETENTION_DAYS',
      ),
    )
    .addOption(
      envOption(
        '--downloads-dir <dir>',
        'Tentacle executables and packages served to anyone at /downloads/ on the HTTPS port (default <data>/downloads)',
        'REEF_DOWNLOADS_DIR',
      ),
    )
    .addOption(
      envOption(
        '--polling-hostname <name>',
        'on the HTTPS port, TLS with this SNI goes to comms (repeatable), e.g. polling.example.com; the variable takes a comma-separated list',
        'REEF_POLLING_HOSTNAMES',
      ).argParser(collect),
    )
    .addOption(envOption('--websocket-path <path>', 'path of the WebSocket endpoint for Tentacles on the HTTPS port (default /reef/comms)', 'REEF_WEBSOCKET_PATH'))
    .addOption(envOption('--proxy-protocol [bool]', 'expect a PROXY protocol v1/v2 header on the HTTPS port (nginx or HAProxy in front)', 'REEF_PROXY_PROTOCOL'))
    .addOption(envOption('--pickup-timeout <seconds>', 'how long work waits for a polling Tentacle to connect, or keeps dialling a listening one that cannot be reached (default 120)', 'REEF_PICKUP_TIMEOUT'))
    .addOption(
      envOption(
        '--max-event-loop-delay <ms>',
        'admission control: while the event loop lags this much, new Tentacle connections are refused before TLS with a retry hint (default 500; 0: off)',
        'REEF_MAX_EVENT_LOOP_DELAY',
      ),
    )
    .addOption(
      envOption(
        '--max-handshakes-in-flight <n>',
        'admission control: the same refusal while this many Tentacle connections have no verdict yet (default 0: off; silent connections count, see docs/security.md)',
        'REEF_MAX_HANDSHAKES_IN_FLIGHT',
      ),
    )
    .addOption(
      envOption(
        '--lost-contact-limit <seconds>',
        "how long a running script's Tentacle may be out of contact before its machine run fails (default 1800); a task may set its own",
        'REEF_LOST_CONTACT_LIMIT',
      ),
    )
    .addOption(envOption('--log-quota-mib <MiB>', 'most script output stored per machine of a task; the rest is counted, not stored (default 256)', 'REEF_LOG_QUOTA_MIB'))
    .addOption(
      envOption(
        '--https-certificate <file>',
        "a CA-issued certificate for the portal and API: PEM with its chain (and key), or PKCS#12 (.pfx); read again on SIGHUP or when the file changes. Comms keeps the pinned certificate (default: the portal presents the pinned one)",
        'REEF_HTTPS_CERTIFICATE',
      ),
    )
    .addOption(envOption('--https-certificate-key <file>', "the private key (PEM) of --https-certificate, when that file does not hold it", 'REEF_HTTPS_CERTIFICATE_KEY'))
    .addOption(envOption('--https-certificate-password <password>', 'opens a PKCS#12 --https-certificate or an encrypted key (prefer the variable: flags show in ps)', 'REEF_HTTPS_CERTIFICATE_PASSWORD'))
    .addOption(
      envOption(
        '--metrics-listen <host:port>',
        'also serve /metrics over plain HTTP, without credentials, on this address (e.g. 127.0.0.1:9464); on the HTTPS port it needs an API key',
        'REEF_METRICS_LISTEN',
      ),
    )
    .addOption(
      envOption(
        '--api-requests-per-minute <n>',
        `requests a minute per API key or portal user, also the largest burst, before 429 (default ${DEFAULT_LIMITS.requestsPerMinutePerActor})`,
        'REEF_API_REQUESTS_PER_MINUTE',
      ),
    )
    .addOption(
      envOption(
        '--anonymous-requests-per-minute <n>',
        `requests a minute per client address without credentials (the PROXY protocol's address behind a proxy) before 429 (default ${DEFAULT_LIMITS.requestsPerMinutePerAddress})`,
        'REEF_ANONYMOUS_REQUESTS_PER_MINUTE',
      ),
    )
    .addOption(
      envOption(
        '--config <file>',
        'JSON file with the same settings (dataDir, store, httpsPort, commsPort, host, nodeName, filesDir, fileRetentionDays, downloadsDir, pickupTimeoutSeconds, pollingHostnames, websocketPath, proxyProtocol, logQuotaMiB, lostContactLimitSeconds, httpsCertificate, httpsCertificateKey, httpsCertificatePassword, metricsListen, apiRequestsPerMinute, anonymousRequestsPerMinute, maxEventLoopDelayMs, maxHandshakesInFlight)',
        'REEF_CONFIG',
      ),
    )
    .action(
      runAction(async (opts: RunOptions) => {
        const settings = await resolveServerSettings(opts);
        const { startReefServer } = await runtime();
        const { createLogger } = await import('../logging.js'); // pino: loaded by the one command that logs
        const logger = createLogger('reef-server');
        // A server for a whole fleet must not exit because one code path forgot a catch:
        // log what escaped (with its stack) and keep serving.
        process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection (kept running)'));
        let running: Awaited<ReturnType<typeof startReefServer>>;
        try {
          running = await startReefServer({ ...settings, logger });
        } catch (err) {
          // startReefServer closed what it opened, so the process ends once the error is
          // printed; should anything still hold it (a bug), it ends anyway, and says what.
          setTimeout(() => {
            logger.error({ stillOpen: process.getActiveResourcesInfo() }, 'start-up failed but something it opened was left open; exiting anyway');
            process.exit(1);
          }, FAILED_START_EXIT_MS).unref();
          throw err;
        }
        // The conventional reload signal (systemctl reload): the portal's CA certificate is read again.
        process.on('SIGHUP', () => void running.reloadHttpsCertificate('SIGHUP'));
        const shown = settings.host && settings.host !== '0.0.0.0' ? settings.host : 'localhost';
        // Machines are elsewhere: the command they run names this host as the network knows it.
        const forMachines = httpsBaseUrl(settings.host && !['0.0.0.0', '::'].includes(settings.host) ? settings.host : hostname(), running.httpsPort);
        const downloads = describeDownloads(await running.downloads.list(), forMachines, running.publicKeyPin);
        // One write, ending with a fixed line: scripts that start the server read up to it.
        const banner = [
          'Reef server is running.',
          `  Portal:          https://${shown}:${running.httpsPort}/`,
          `  REST API:        https://${shown}:${running.httpsPort}/api`,
          `  Comms port:      ${running.commsPort}`,
          ...(settings.pollingHostnames?.length
            ? [`  Polling on ${running.httpsPort} for: ${settings.pollingHostnames.join(', ')} (SNI), and any name with ALPN reef-comms`]
            : []),
          `  WebSocket path:  ${settings.websocketPath ?? '/reef/comms'}`,
          `  Metrics:         https://${shown}:${running.httpsPort}/metrics (with an API key)` +
            (settings.metricsListen && running.metricsPort ? `; http://${hostPort(settings.metricsListen.host, running.metricsPort)}/metrics (no credentials)` : ''),
          `  Thumbprint:      ${running.info.commsThumbprint}`,
          ...httpsCertificateLines(running.httpsCertificate),
          `  Node:            ${running.info.nodeName}${running.clustered ? ' (PostgreSQL store: other nodes may share its work)' : ''}`,
          `  Data directory:  ${settings.dataDir}`,
          ...downloads,
          ...(running.initialAdminKey ? [`  Admin API key (shown only this once): ${running.initialAdminKey}`] : []),
          ...(running.initialAdminPassword ? [`  Admin sign-in (shown only this once): admin / ${running.initialAdminPassword}`] : []),
          ...(running.initialCredentialsFile ? [`  First-run credentials kept in ${running.initialCredentialsFile} (mode 0600) until admin first signs in`] : []),
          'Stop it with Ctrl+C or SIGTERM.',
        ];
        printLine(banner.join('\n'));
        await new Promise<void>((resolveStop) => {
          const stop = () => resolveStop();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        await running.close();
      }),
    );

  registerServerServiceCommand(server, run);
  registerRotateCertificateCommand(server);

  server
    .command('show-thumbprint')
    .description('print the server certificate thumbprint that Tentacles trust')
    .option('--data <dir>', 'data directory (default $REEF_HOME or ./.reef)')
    .addOption(envOption('--store <url>', "a cluster's PostgreSQL store: print the certificate its nodes share", 'REEF_STORE'))
    .action(
      runAction(async (opts: { data?: string; store?: string }) => {
        const { readServerThumbprint } = await runtime();
        printLine(await readServerThumbprint(resolve(opts.data ?? defaultDataDir()), opts.store));
      }),
    );
}

/** The banner's lines about a configured portal certificate: people check what browsers will see. */
function httpsCertificateLines(cert: RunningServer['httpsCertificate']): string[] {
  if (!cert) return [];
  return [
    `  HTTPS certificate: ${cert.subject}, issued by ${cert.issuer}, valid until ${cert.notAfter.toISOString().slice(0, 10)} (portal and API only; comms keeps the thumbprint above)`,
  ];
}

/** `host:port`, with an IPv6 host in brackets. */
function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The server service's environment file with every setting commented out (what `--install` and the Debian package write). */
export function serverEnvironmentTemplate(): string {
  const program = new Command('reef');
  registerServerCommands(program);
  const run = program.commands.find((c) => c.name() === 'server')?.commands.find((c) => c.name() === 'run');
  if (!run) throw new Error('reef server run is not defined');
  return environmentTemplate(run);
}

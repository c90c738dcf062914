import https from 'node:https';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { CreatedApiKey, ServerInfo, UserWithPassword } from '../api/contract.js';
import {
  CommsServer,
  createFrontDoor,
  createWebSocketEndpoint,
  remoteEndpointOf,
  setAnnouncedAddress,
  writeFriendlyPage,
  type CommsLimits,
  type FrontDoorLimits,
} from '../comms/index.js';
import { errorMessage, ReefError } from '../errors.js';
import { silentLogger, type Logger } from '../logging.js';
import { loadIdentity, loadOrCreateIdentity } from '../pki/identity-files.js';
import type { Thumbprint } from '../pki/thumbprint.js';
import { AuditLog, systemActor } from './audit/index.js';
import { createApiKey } from './auth/apikeys.js';
import { checkedAccess } from './auth/scope.js';
import { resetPassword } from './auth/users.js';
import { userView } from './http/views.js';
import { sessionActor, signedInAs } from './portal/pages/common.js';
import { createBlobStore } from './files/blobs.js';
import { findSession, readCookie, SESSION_COOKIE } from './auth/sessions.js';
import { createDownloadsHandler, defaultDownloadsDir, DownloadsFolder } from './downloads/index.js';
import { releasesIn } from './tentacle-releases/index.js';
import { Closers } from './closers.js';
import { ABANDONED_UPLOAD_MS, UploadJanitor } from './files/retention.js';
import { createApiHandler, createAuthLimiter } from './http/handler.js';
import { createCommsRegistration } from './http/comms-registration.js';
import type { ApiLimits } from './http/context.js';
import { createPortalSocketGuard } from './https/socket-guard.js';
import { generatedCertificateNames } from './https/certificate-names.js';
import { createPortalCertificate, type PortalCertificateSettings, type ReloadOutcome } from './https/portal-certificate.js';
import type { ServingCertificate } from '../pki/serving-certificate.js';
import { answerClientErrors, MAX_HEAD_BYTES, refuseOversizedHead } from './https/request-head.js';
import type { PortalSocketLimits } from './https/limits.js';
import { ensureInitialCredentials, forgetInitialCredentials, type InitialCredentials } from './auth/initial-credentials.js';
import { INITIAL_ADMIN } from './auth/users.js';
import { createPortalHandler } from './portal/index.js';
import { randomUUID } from 'node:crypto';
import { LocalBus } from './cluster/bus.js';
import { CertificateRotator, SERVER_IDENTITY } from './certificate-rotation.js';
import { generateCertificate } from '../pki/certificate.js';
import { adoptClusterIdentity, readClusterThumbprint } from './cluster/identity.js';
import { PostgresBus } from './cluster/postgres-bus.js';
import { LinkPresence } from './cluster/presence.js';
import { TicketKeeper } from './ticket-keys.js';
import { TrustCache } from './trust-cache.js';
import { WriteBatch } from './write-batch.js';
import { createScrapeListener, ServerMetrics, timeStore, watchNode } from './metrics/index.js';
import { createStore, parseStoreLocation } from './store/index.js';
import type { ClusterTiming } from './tasks/scheduler.js';
import type { Access, Store } from './store/types.js';
import { watchMachineCertificates } from './machine-certificates.js';
import { TaskEngine } from './tasks/engine.js';
import { learnProxyCarrier } from './tentacle-carrier.js';
import { portHolderPhrase } from './port-holder.js';
import { VERSION } from '../version.js';

export interface ServerSettings {
  /** Holds the certificate, the SQLite store and uploaded files. Created on first run. */
  dataDir: string;
  /** Where the store lives: a postgres:// URL, or by default reef.db in the data directory. */
  store?: string;
  /** Portal and REST API. */
  httpsPort: number;
  /** Comms listener for polling tentacles. */
  commsPort: number;
  /** Address both listen on. */
  host?: string;
  /** Unique per node of a cluster; default the host name. */
  nodeName?: string;
  /** Uploaded files; nodes of a cluster must share one directory. Default `<dataDir>/files`. */
  filesDir?: string;
  /** Uploaded files unused this long, and needed by no unfinished task, are deleted. Default 7. */
  fileRetentionDays?: number;
  /** Packaged Tentacles and server tarballs served at /downloads on the HTTPS port. Default `<dataDir>/downloads`. */
  downloadsDir?: string;
  limits?: Partial<CommsLimits>;
  /** Preamble deadline and per-address cap of the HTTPS port (DEFAULT_FRONT_DOOR_LIMITS). */
  frontDoorLimits?: Partial<FrontDoorLimits>;
  /** Header, body and idle deadlines of portal and API connections (DEFAULT_PORTAL_SOCKET_LIMITS). */
  portalSocketLimits?: Partial<PortalSocketLimits>;
  /** Heartbeat, lease and sweep periods of the cluster (tests shorten them). */
  clusterTiming?: Partial<ClusterTiming>;
  /** SNI names that mean "a Tentacle" on the HTTPS port (the 443 front door). */
  pollingHostnames?: string[];
  /** Where Tentacles open WebSockets on the HTTPS port. */
  websocketPath?: string;
  /** Expect a PROXY protocol header on the HTTPS port (nginx or HAProxy in front). */
  proxyProtocol?: boolean;
  /** A CA-issued certificate for the portal and API (not comms); default the pinned comms identity. */
  httpsCertificate?: PortalCertificateSettings;
  /** How often that certificate's files are checked for a change (DEFAULT_CERTIFICATE_WATCH_INTERVAL_MS). */
  httpsCertificateWatchIntervalMs?: number;
  /** Most bytes of script output stored per machine run (TaskEngineOptions.logQuotaBytes). */
  logQuotaBytes?: number;
  /** How often a certificate rotation checks connected Tentacles and re-reads the store (DEFAULT_ROTATION_SWEEP_MS; tests shorten it). */
  certificateRotationSweepMs?: number;
  /** Request budgets and failure limits of the REST API (DEFAULT_LIMITS in src/server/http/context.ts). */
  apiLimits?: ApiLimits;
  /** How long a running script's Tentacle may be out of contact (TaskEngineOptions.lostContactLimitMs). */
  lostContactLimitMs?: number;
  /** Also serve /metrics without credentials on this plain-HTTP address (docs/security.md). */
  metricsListen?: { host: string; port: number };
  logger?: Logger;
}

export const DEFAULT_WEBSOCKET_PATH = '/reef/comms';

export interface RunningServer {
  httpsPort: number;
  commsPort: number;
  info: ServerInfo;
  /** On PostgreSQL: other nodes may share the store and its work. */
  clustered: boolean;
  /** Set on the very first run only: the admin API key, shown once. */
  initialAdminKey?: string;
  /** Set when the store had no portal user: the `admin` password, shown once. */
  initialAdminPassword?: string;
  /** The 0600 file that keeps the first-run credentials until `admin` first signs in, while it exists. */
  initialCredentialsFile?: string;
  store: Store;
  comms: CommsServer;
  engine: TaskEngine;
  /** What /downloads serves. */
  downloads: DownloadsFolder;
  /** `sha256//<base64>` of the HTTPS certificate's public key, for curl's --pinnedpubkey. */
  readonly publicKeyPin: string;
  /** The portal's CA certificate when one is configured (`--https-certificate`). */
  readonly httpsCertificate: ServingCertificate | undefined;
  /** Reads the configured portal certificate again (SIGHUP); the old one stays if the new one is unusable. */
  reloadHttpsCertificate(trigger: string): Promise<ReloadOutcome>;
  /** What /metrics serves. */
  readonly metrics: ServerMetrics;
  /** The plain-HTTP metrics port, when `metricsListen` is set. */
  readonly metricsPort?: number;
  close(): Promise<void>;
}

const MISSING_IDENTITY_HINT = 'Start the server once with "reef server run" to create it.';

/**
 * Starts a Reef server node: store, comms listener, task engine and HTTPS API, all on
 * one certificate (the portal and comms thumbprints are the same unless an operator
 * configures a separate portal certificate). Unfinished tasks from an earlier run resume.
 */
export async function startReefServer(settings: ServerSettings): Promise<RunningServer> {
  const logger = settings.logger ?? silentLogger;
  const closers = new Closers(logger);
  try {
    return await start(settings, logger, closers);
  } catch (err) {
    // A later step failed (a port taken, the database gone): close what the earlier ones opened.
    await closers.closeAll();
    throw err;
  }
}

async function start(settings: ServerSettings, logger: Logger, closers: Closers): Promise<RunningServer> {
  await mkdir(settings.dataDir, { recursive: true, mode: 0o700 });
  const location = storeLocation(settings.dataDir, settings.store);
  const metrics = new ServerMetrics();
  const timedStore = timeStore(await createStore(location), metrics);
  closers.add('store', () => timedStore.close());
  // Trust is asked on every new comms connection: answered from memory, kept current by
  // every machine change made through `store` (and by other nodes' over the bus).
  let comms: CommsServer | undefined;
  const trust = new TrustCache(timedStore, logger, (thumbprint) => comms?.disconnect(thumbprint, 'its machine was deleted or registered with another certificate on another node'));
  const store = trust.watch(timedStore);
  const clustered = parseStoreLocation(location).kind === 'postgres';
  const certificateNames = generatedCertificateNames({ host: settings.host, pollingHostnames: settings.pollingHostnames });
  const ownIdentity = await loadOrCreateIdentity(settings.dataDir, SERVER_IDENTITY, `Reef Server ${hostname()}`, {
    subjectAltNames: certificateNames,
  });
  const identity = clustered ? await adoptClusterIdentity(store.coordination, ownIdentity, logger) : ownIdentity;
  const nodeName = settings.nodeName ?? hostname();
  const audit = new AuditLog({ store, node: nodeName, logger });
  // Read before anything listens, so a file that cannot be used stops the start at once.
  // Comms keeps `identity` whatever the portal presents.
  const portalCertificate = await createPortalCertificate({
    settings: settings.httpsCertificate,
    identity,
    logger,
    watchIntervalMs: settings.httpsCertificateWatchIntervalMs,
    onReloaded: ({ trigger, from, to }) =>
      void audit.record({ actor: systemActor(`HTTPS certificate reload (${trigger})`), kind: 'server.https-certificate-reloaded', details: { from, to: to.thumbprint, subject: to.subject, notAfter: to.notAfter.toISOString() } }),
  });
  closers.add('HTTPS certificate watch', () => portalCertificate.close());
  const blobs = createBlobStore(settings.filesDir ?? join(settings.dataDir, 'files'));
  // Alone, every temp file is a crash's leftover; in a cluster another node may be
  // writing one into the shared directory right now, so only abandoned ones go.
  const swept = await blobs.sweepPartials(clustered ? ABANDONED_UPLOAD_MS : 0);
  if (swept > 0) logger.info({ removed: swept, dir: blobs.dir }, 'removed temp files of uploads cut off by an earlier stop');
  const janitor = new UploadJanitor({ blobs, store, logger, retentionDays: settings.fileRetentionDays });
  const bus = clustered ? await PostgresBus.open(location, `${nodeName}/${randomUUID()}`, logger) : new LocalBus();
  closers.add('cluster bus', () => bus.close());
  // One read of every machine at the start, for trust and for when each was last seen.
  const machines = await store.listMachines();
  await trust.start(bus, machines);
  closers.add('trust cache', () => trust.close());
  const ticketKeys = await TicketKeeper.start({
    dataDir: settings.dataDir,
    coordination: clustered ? store.coordination : undefined,
    bus,
    logger,
    apply: (keys) => comms?.setTicketKeys(keys),
  });
  closers.add('session-ticket keys', () => ticketKeys.close());

  const lastSeen = new Map<Thumbprint, Date>();
  for (const machine of machines) if (machine.lastSeenAt) lastSeen.set(machine.thumbprint, new Date(machine.lastSeenAt));
  let rotator: CertificateRotator | undefined;
  comms = new CommsServer({
    identity,
    // After a rotation, Tentacles that missed it ask for the old certificate by thumbprint.
    presentable: (thumbprint) => rotator?.presentable(thumbprint),
    earlierIdentities: () => rotator?.earlierIdentities() ?? [],
    // Asked on every connection, resumed or not: a deleted machine is refused at once.
    // During a Tentacle certificate rotation, a machine's next thumbprint is trusted as well.
    trust: (thumbprint) => trust.trusts(thumbprint),
    ticketKeys: ticketKeys.keys,
    limits: settings.limits,
    logger,
    lastSeenAt: (thumbprint) => lastSeen.get(thumbprint),
  });
  // Last contacts go to the store in batches (a reconnect burst writes a few statements, not
  // one per Tentacle); flushed after comms closes, before the store does.
  const contacts = new WriteBatch<{ carrier?: string }>(
    (entries) => store.touchMachines([...entries].map(([thumbprint, { carrier }]) => ({ thumbprint, ...(carrier ? { carrier } : {}) })), new Date()),
    (err, tentacles) => logger.warn({ err, tentacles }, 'could not record tentacle contacts'),
    (next, previous) => ({ carrier: next.carrier ?? previous.carrier }),
  );
  closers.add('tentacle contacts', () => contacts.flushed());
  closers.add('comms listener', () => comms.close());
  const touch = (thumbprint: Thumbprint, carrier?: string) => {
    lastSeen.set(thumbprint, new Date());
    void contacts.set(thumbprint, carrier ? { carrier } : {});
  };
  const host = settings.host ?? '0.0.0.0';
  const info: ServerInfo = { product: 'Reef', version: VERSION, nodeName, commsThumbprint: identity.thumbprint, commsPort: 0 };
  // Before the engine: upgrade-tentacle tasks stream the Tentacle executables it holds.
  const downloads = new DownloadsFolder(settings.downloadsDir ?? defaultDownloadsDir(settings.dataDir), { logger });
  closers.add('downloads folder', () => downloads.close());
  downloads.start();
  const releases = releasesIn(downloads);
  const engine = new TaskEngine({
    store,
    comms,
    blobs,
    releases,
    logger,
    bus,
    node: { name: nodeName, info: { host: hostname(), pid: process.pid, version: VERSION } },
    timing: settings.clusterTiming,
    logQuotaBytes: settings.logQuotaBytes,
    lostContactLimitMs: settings.lostContactLimitMs,
  });
  watchNode(metrics, { node: nodeName, version: VERSION, comms, engine, bus });
  rotator = new CertificateRotator({
    store,
    comms,
    bus,
    logger,
    dataDir: settings.dataDir,
    clustered,
    current: identity,
    generate: () => generateCertificate(`Reef Server ${hostname()}`, { subjectAltNames: certificateNames }),
    onSwitch: (next) => {
      info.commsThumbprint = next.thumbprint;
      portalCertificate.switchIdentity(next);
    },
    sweepMs: settings.certificateRotationSweepMs,
    audit,
  });
  closers.add('certificate rotation', () => rotator?.close());
  watchMachineCertificates({ store, comms, bus, audit, logger });
  // Before the comms port opens: the first Tentacle to connect may be one that missed a rotation.
  await rotator.start();
  // One count of failed API keys per address, for the REST API and registrations over comms alike.
  const authLimiter = createAuthLimiter(settings.apiLimits);
  comms.acceptRegistrations(createCommsRegistration({ store, comms, info, engine, logger, audit }, authLimiter));
  const presence = new LinkPresence(store.coordination, nodeName, logger);
  comms.on('connected', (client) => {
    const { thumbprint, carrier } = client.peer;
    // Recorded before claiming, so the claim sees the tentacle here.
    void presence.connected(thumbprint, carrier).then(() => {
      bus.publish({ kind: 'link', thumbprint });
      engine.scheduler.claimSoon();
    });
    touch(client.peer.thumbprint, client.peer.carrier);
    void learnProxyCarrier(client, logger).then((changed) => changed && touch(client.peer.thumbprint, client.peer.carrier));
  });
  comms.on('disconnected', (client) => {
    touch(client.peer.thumbprint);
    void presence.disconnected(client.peer.thumbprint);
  });

  // Joined before the first tentacle can connect: its link row names this node.
  closers.add('task engine', () => engine.close());
  await engine.start();
  const commsPort = await listenOn('comms port', '--comms-port, or commsPort in the config file', settings.commsPort, host, () => comms.listen(settings.commsPort, host));
  info.commsPort = commsPort;

  const downloadsHandler = createDownloadsHandler({
    folder: downloads,
    publicKeyPin: () => portalCertificate.publicKeyPin(),
    logger,
    viewer: async (req) => {
      const session = await findSession(store, readCookie(req.headers.cookie, SESSION_COOKIE));
      return session ? signedInAs(session, sessionActor(session)) : undefined;
    },
  });
  const install = {
    publicKeyPin: () => portalCertificate.publicKeyPin(),
    // Without a configured certificate the HTTPS port presents the comms identity.
    portalThumbprint: () => portalCertificate.configured()?.thumbprint ?? info.commsThumbprint,
    websocketPath: settings.websocketPath ?? DEFAULT_WEBSOCKET_PATH,
  };
  const apiHandler = createApiHandler({
    store, engine, comms, blobs, info, logger, metrics, audit, install, rotation: rotator, authLimiter, limits: settings.apiLimits,
    portal: createPortalHandler({ store, comms, info, logger, audit, nodes: () => engine.nodes(), links: () => engine.links(), releases: () => engine.releases(), onSignedIn: (user) => forgetInitialCredentials(settings.dataDir, user.username, logger) }),
  });
  const websockets = createWebSocketEndpoint({
    path: settings.websocketPath ?? DEFAULT_WEBSOCKET_PATH,
    onStream: (stream, request) => {
      const endpoint = remoteEndpointOf(request.socket);
      if (endpoint) setAnnouncedAddress(stream, endpoint);
      comms.accept(stream, 'websocket');
    },
    friendlyPage: writeFriendlyPage,
    busy: () => comms.busy('websocket'),
  });
  closers.add('WebSocket endpoint', () => websockets.close());
  const api = https.createServer({ ...portalCertificate.tlsOptions(), ALPNProtocols: ['http/1.1'], maxHeaderSize: MAX_HEAD_BYTES }, (req, res) => {
    const hsts = portalCertificate.strictTransportSecurity();
    if (hsts) res.setHeader('strict-transport-security', hsts);
    if (refuseOversizedHead(req, res)) return;
    if (!websockets.handleRequest(req, res) && !downloadsHandler(req, res)) apiHandler(req, res);
  });
  portalCertificate.serve(api);
  answerClientErrors(api, logger);
  api.on('upgrade', (req, socket, head) => {
    if (!websockets.handleUpgrade(req, socket, head)) socket.destroy();
  });
  api.on('tlsClientError', (err) => logger.debug({ err: err.message }, 'https: TLS handshake failed'));
  // The API server never listens (the front door feeds it), so it knows none of its sockets:
  // the guard keeps them, under deadline, and closes them all on shutdown.
  const portalSockets = createPortalSocketGuard(api, {
    limits: settings.portalSocketLimits,
    logger,
    // A Tentacle's WebSocket: bounded per certificate, no longer per address (many share a proxy).
    onUpgrade: (socket) => frontDoor.leftForComms(socket),
  });
  closers.add('portal and API connections', () => portalSockets.close());
  // The HTTPS port is a front door: tentacles (by SNI or ALPN) go to comms with their TLS
  // untouched, everyone else to the portal and API.
  const frontDoor = createFrontDoor({
    pollingHostnames: settings.pollingHostnames ?? [],
    proxyProtocol: settings.proxyProtocol,
    limits: settings.frontDoorLimits,
    logger,
    toComms: (socket, carrier) => comms.accept(socket, carrier),
    toPortal: (socket) => portalSockets.adopt(socket),
  });
  closers.add('front door', () => frontDoor.close());
  const httpsPort = await listenOn('HTTPS port', '--https-port, or httpsPort in the config file', settings.httpsPort, host, () => frontDoor.listen(settings.httpsPort, host));
  let metricsPort: number | undefined;
  if (settings.metricsListen) {
    const { host: at, port } = settings.metricsListen;
    const scrapes = createScrapeListener(metrics, logger);
    closers.add('metrics listener', () => scrapes.close());
    metricsPort = await listenOn('metrics port', '--metrics-listen, or metricsListen in the config file', port, at, () => scrapes.listen(port, at));
  }
  await engine.scheduler.announce({ httpsPort, commsPort });
  janitor.start();
  closers.add('upload janitor', () => janitor.close());
  // Made only once the node is up: a first start that fails must not use up the one showing.
  const initial = await ensureInitialCredentials(store, settings.dataDir, nodeName);
  await auditInitialCredentials(audit, store, initial);
  logger.info({ httpsPort, commsPort, thumbprint: identity.thumbprint, node: nodeName, dataDir: settings.dataDir }, 'Reef server started');

  return {
    httpsPort,
    commsPort,
    info,
    clustered,
    initialAdminKey: initial.apiKey,
    initialAdminPassword: initial.password,
    initialCredentialsFile: initial.file,
    store,
    comms,
    engine,
    downloads,
    get publicKeyPin() {
      return portalCertificate.publicKeyPin();
    },
    get httpsCertificate() {
      return portalCertificate.configured();
    },
    reloadHttpsCertificate: (trigger) => portalCertificate.reload(trigger),
    metrics,
    metricsPort,
    close: () => closers.closeAll(),
  };
}

/** Listens, turning "the port is taken" into a message that names the port and the setting to change. */
async function listenOn(what: string, setting: string, port: number, host: string, listen: () => Promise<number>): Promise<number> {
  try {
    return await listen();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      const holder = await portHolderPhrase(port);
      throw new ReefError('REEF_PORT_IN_USE', `Cannot listen on the ${what} ${port} at ${host}: another program already uses it${holder ? ` (${holder})` : ''}. Stop that program or choose another port (${setting}).`, { cause: err });
    }
    if (code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new ReefError('REEF_CANNOT_LISTEN', `Cannot listen on the ${what} ${port} at ${host} (${code}): ${errorMessage(err)}. Ports below 1024 need privileges; the address must be one of this machine's. Change ${setting}.`, { cause: err });
    }
    throw err;
  }
}

/**
 * The thumbprint tentacles must trust: a cluster's shared certificate when the store is
 * PostgreSQL and a node has started on it, else the one in the data directory.
 */
export async function readServerThumbprint(dataDir: string, storeUrl?: string): Promise<Thumbprint> {
  if (storeUrl && parseStoreLocation(storeUrl).kind === 'postgres') {
    const store = await createStore(storeUrl);
    try {
      const shared = await readClusterThumbprint(store.coordination);
      if (shared) return shared as Thumbprint;
    } finally {
      await store.close();
    }
  }
  return (await loadIdentity(dataDir, SERVER_IDENTITY, MISSING_IDENTITY_HINT)).thumbprint;
}

/** The embedded SQLite file in the data directory, unless another store is named. */
export function storeLocation(dataDir: string, store?: string): string {
  return store ?? join(dataDir, 'reef.db');
}

/** What the first start made, in the audit log: the server made them, from no address. */
async function auditInitialCredentials(audit: AuditLog, store: Store, initial: InitialCredentials): Promise<void> {
  const actor = systemActor('first start');
  if (initial.apiKey) {
    const key = (await store.listApiKeys()).find((k) => k.prefix === initial.apiKey!.slice(4, 12));
    await audit.record({ actor, kind: 'apikey.created', target: { id: key?.id ?? null, name: key?.name ?? null }, details: { prefix: initial.apiKey.slice(4, 12) } });
  }
  if (initial.password) {
    const user = await store.getUserCredential(INITIAL_ADMIN);
    await audit.record({ actor, kind: 'user.created', target: { id: user?.id ?? null, name: INITIAL_ADMIN } });
  }
}

/**
 * `reef user reset-password --data DIR`: a new password for a user, straight in the store,
 * for the admin who lost theirs (the server may be stopped). It also enables the user, and
 * ends their sessions. Returns the password to print once. The audit log names the command
 * and this host: there is no connection, and so no address.
 */
export async function resetPasswordOffline(dataDir: string, username: string, storeUrl?: string, password?: string): Promise<UserWithPassword> {
  const store = await createStore(storeLocation(dataDir, storeUrl));
  try {
    const reset = await resetPassword(store, username, password);
    await store.setUserDisabled(reset.user.id, false);
    const audit = new AuditLog({ store, node: hostname(), logger: silentLogger });
    await audit.record({ actor: systemActor('reef user reset-password --data'), kind: 'user.password-reset', target: { id: reset.user.id, name: reset.user.username }, details: { enabled: true } });
    return { user: userView((await store.getUser(reset.user.id)) ?? reset.user), password: reset.password };
  } finally {
    await store.close();
  }
}

/**
 * Creates an API key directly in the server's store (works while the server runs). The audit
 * log names the command and this host: there is no connection, and so no address.
 */
export async function createApiKeyOffline(dataDir: string, name: string, storeUrl?: string, access?: Access): Promise<CreatedApiKey> {
  const store = await createStore(storeLocation(dataDir, storeUrl));
  try {
    const created = await createApiKey(store, name, access ? await checkedAccess(store, access) : undefined);
    const audit = new AuditLog({ store, node: hostname(), logger: silentLogger });
    await audit.record({ actor: systemActor('reef apikey create --data'), kind: 'apikey.created', target: { id: created.id, name: created.name }, details: { prefix: created.key.slice(4, 12), role: created.role, scope: created.scope } });
    return { id: created.id, name: created.name, role: created.role, scope: created.scope, key: created.key };
  } finally {
    await store.close();
  }
}

/**
 * Registering this Tentacle with a Reef server over the REST API, and the config changes
 * that go with it: `register-with`, `register-worker`, `deregister-from`,
 * `deregister-worker` and `poll-server`. The API client pins the portal certificate when
 * given its thumbprint (else checks it against the public CAs or a given CA file), before
 * the API key is sent. Comms is pinned regardless: the server's answer names the comms
 * certificate, and only that thumbprint is trusted.
 */
import { hostname } from 'node:os';
import net from 'node:net';
import tls from 'node:tls';
import { ApiCallError, ApiClient, UNTRUSTED_CERT_CODES } from '../api/client.js';
import type { MachineView, RegisterMachineRequest, RegisterMachineResponse, ServerInfo } from '../api/contract.js';
import { httpStatusOf } from '../error-codes.js';
import { isReefError, ReefError } from '../errors.js';
import { readCaFile } from '../pki/ca-file.js';
import { normalizeThumbprint, thumbprintOfDer, type Thumbprint } from '../pki/thumbprint.js';
import { currentThumbprint } from './certificate.js';
import { loadInstance, updateConfig, type PolledServer, type TentacleConfig } from './config.js';
import { parseResolveEntries, restTransport } from './network.js';
import { OVER_COMMS_OPTION, polledServer, registerThroughCarrier, type PollingCarrierOptions } from './registration-carrier.js';
import { VERSION } from '../version.js';
import { tentacleRoot } from './paths.js';

export type CommsStyle = 'TentacleActive' | 'TentaclePassive';

export interface ServerApiOptions {
  /** The portal URL, https://host[:port]. */
  server: string;
  /** An API key; registration may give `joinToken` instead. */
  apiKey?: string;
  /**
   * A join token (register only): sent where a key would be, the server tells them apart by
   * their form. It registers only into its scope; its refusals already say what to do.
   */
  joinToken?: string;
  /** The portal certificate's thumbprint; without it the certificate must be valid for a public CA (or `caFile`). */
  serverThumbprint?: string;
  /** PEM file of a CA (the organisation's) whose certificates the portal may present, besides the public CAs. Comms stays pinned either way. */
  caFile?: string;
  /** curl-style HOST:PORT:ADDRESS entries, kept in the config for REST and comms alike. */
  resolve?: string[];
}

export type { PollingCarrierOptions } from './registration-carrier.js';

export interface RegisterOptions extends ServerApiOptions, PollingCarrierOptions {
  instance: string;
  kind: 'target' | 'worker';
  /** TentacleActive: the Tentacle polls the server (default). TentaclePassive: it listens. */
  commsStyle: CommsStyle;
  environments?: string[];
  roles?: string[];
  workerPools?: string[];
  /** Default: this machine's hostname. */
  name?: string;
  /** Listening: the host name the server dials. Default: this machine's hostname. */
  publicHostName?: string;
  force?: boolean;
  root?: string;
  /**
   * Register over the comms carrier the options choose (its inner mutual TLS, pinned to
   * `serverThumbprint`) instead of the portal's HTTPS: what works behind a TLS-terminating
   * proxy. The portal is not contacted.
   */
  overComms?: boolean;
}

export interface RegisterResult {
  machine: MachineView;
  created: boolean;
  server: ServerInfo;
  /** The server node now polled (polling registrations). */
  polled?: PolledServer;
  config: TentacleConfig;
}

export async function register(options: RegisterOptions): Promise<RegisterResult> {
  const root = options.root ?? tentacleRoot();
  const { config } = await loadInstance(options.instance, root);
  const thumbprint = await currentThumbprint(config);
  const api = await apiFor(options, config);
  if (options.overComms && api.pin === undefined) {
    throw new ReefError(
      'REEF_INVALID_ARGUMENT',
      `${OVER_COMMS_OPTION} needs --server-thumbprint: the server's comms thumbprint, which "reef server show-thumbprint" prints on the server, ` +
        "pinned inside the carrier's own TLS before the API key is sent (a CA file cannot vouch for it).",
    );
  }
  const polling = options.commsStyle === 'TentacleActive';
  const request: RegisterMachineRequest = {
    name: options.name?.trim() || hostname(),
    kind: options.kind,
    thumbprint,
    commsStyle: polling ? 'polling' : 'listening',
    endpoint: polling ? null : { host: options.publicHostName?.trim() || hostname(), port: config.listen.port },
    ...(options.kind === 'target' ? { environments: options.environments ?? [], roles: options.roles ?? [] } : { workerPools: options.workerPools ?? [] }),
    tentacleVersion: VERSION,
    force: options.force === true,
  };
  const send = options.overComms
    ? () => registerThroughCarrier({ ...options, server: api.url, credentials: { apiKey: options.joinToken ?? options.apiKey }, pinned: api.pin! }, { ...config, resolve: { ...config.resolve, ...api.resolve } }, request)
    : () => api.client.json<RegisterMachineResponse>('POST', '/api/machines', { body: request });
  const response = await callApi(api.via, send, {
    conflictHint: 'Pass --force to replace the existing registration.',
    // Over comms a pin that fails is the inner TLS's, explained where it was dialled.
    ...(options.overComms ? {} : { canRegisterOverComms: true }),
  });
  const serverInfo = checkServerInfo(response?.server, options.server);
  const commsThumbprint = serverInfo.commsThumbprint;
  const polled = polling ? polledServer(api.url, commsThumbprint, options, serverInfo.commsPort) : undefined;

  const updated = await updateConfig(
    options.instance,
    (current) => {
      const next: TentacleConfig = { ...current, listen: { ...current.listen }, resolve: { ...current.resolve, ...api.resolve } };
      next.trust = addOnce(next.trust, commsThumbprint);
      if (polled) next.servers = [...next.servers.filter((s) => s.address !== polled.address), polled];
      else next.listen.enabled = true;
      next.registration = {
        serverUrl: api.url.origin,
        machineName: response.machine.name,
        kind: options.kind,
        // Over comms the pin was the comms certificate's; the portal's (maybe a proxy's) is not known.
        ...(api.pin && !options.overComms ? { apiThumbprint: api.pin } : {}),
      };
      return next;
    },
    root,
  );
  return { machine: response.machine, created: response.created, server: serverInfo, polled, config: updated };
}

export interface DeregisterOptions extends ServerApiOptions {
  instance: string;
  root?: string;
}

export interface DeregisterResult {
  /** false when the server had no machine with this Tentacle's thumbprint (the local config is cleaned up anyway). */
  found: boolean;
  thumbprint: Thumbprint;
  removedServers: PolledServer[];
  removedTrust: Thumbprint[];
}

/**
 * Deletes this Tentacle's machine on the server (by its certificate thumbprint), then
 * stops polling that server and stops trusting its comms certificate.
 */
export async function deregister(options: DeregisterOptions): Promise<DeregisterResult> {
  const root = options.root ?? tentacleRoot();
  const { config } = await loadInstance(options.instance, root);
  const thumbprint = await currentThumbprint(config);
  const api = await apiFor(options, config);
  const info = checkServerInfo(await callApi(api.via, () => api.client.json<ServerInfo>('GET', '/api')), options.server);
  let found = true;
  try {
    await callApi(api.via, () => api.client.json<unknown>('DELETE', `/api/machines/by-thumbprint/${thumbprint}`));
  } catch (err) {
    if (!(isReefError(err) && statusOf(err) === 404)) throw err;
    found = false;
  }

  let removedServers: PolledServer[] = [];
  let removedTrust: Thumbprint[] = [];
  await updateConfig(
    options.instance,
    (current) => {
      const next: TentacleConfig = { ...current };
      removedServers = current.servers.filter((s) => s.apiUrl === api.url.origin || s.thumbprint === info.commsThumbprint);
      next.servers = current.servers.filter((s) => !removedServers.includes(s));
      const candidates = new Set([info.commsThumbprint, ...removedServers.map((s) => s.thumbprint)]);
      // A thumbprint another configured server still uses stays trusted.
      removedTrust = [...candidates].filter((tp) => current.trust.includes(tp) && !next.servers.some((s) => s.thumbprint === tp));
      next.trust = current.trust.filter((tp) => !removedTrust.includes(tp));
      if (current.registration?.serverUrl === api.url.origin) next.registration = null;
      return next;
    },
    root,
  );
  return { found, thumbprint, removedServers, removedTrust };
}

export interface PollServerOptions extends ServerApiOptions, PollingCarrierOptions {
  instance: string;
  root?: string;
}

/** Adds one more server node to poll (high availability): trusts its comms certificate; registers nothing. */
export async function pollServer(options: PollServerOptions): Promise<{ polled: PolledServer; server: ServerInfo }> {
  const root = options.root ?? tentacleRoot();
  const { config } = await loadInstance(options.instance, root); // a clear error for a missing instance before any network call
  const api = await apiFor(options, config);
  const info = checkServerInfo(await callApi(api.via, () => api.client.json<ServerInfo>('GET', '/api')), options.server);
  const polled = polledServer(api.url, info.commsThumbprint, options, info.commsPort);
  await updateConfig(
    options.instance,
    (current) => ({
      ...current,
      resolve: { ...current.resolve, ...api.resolve },
      trust: addOnce(current.trust, info.commsThumbprint),
      servers: [...current.servers.filter((s) => s.address !== polled.address), polled],
    }),
    root,
  );
  return { polled, server: info };
}

// ---- helpers ------------------------------------------------------------------------

/** An API client that reaches the server the way the config says (resolve, `tentacle proxy`). */
async function apiFor(options: ServerApiOptions, config: TentacleConfig): Promise<{ client: ApiClient; url: URL; pin: Thumbprint | undefined; resolve: Record<string, string>; via: Via }> {
  const pin = options.serverThumbprint !== undefined ? normalizeThumbprint(options.serverThumbprint) : undefined;
  if (pin && options.caFile !== undefined) {
    throw new ReefError('REEF_INVALID_ARGUMENT', 'Give --server-thumbprint or --ca-file, not both: a thumbprint trusts exactly one certificate, a CA file what that CA issues.');
  }
  const trustedCas = options.caFile !== undefined ? await readCaFile(options.caFile) : undefined;
  const resolve = parseResolveEntries(options.resolve ?? []);
  const transport = restTransport({ ...config, resolve: { ...config.resolve, ...resolve } });
  const client = new ApiClient({ server: options.server, apiKey: options.joinToken ?? options.apiKey, serverThumbprint: pin, trustedCas, transport });
  return { client, url: client.baseUrl, pin, resolve, via: { ...options, transport } };
}

/** The options, and how the portal is reached (for reading what it presents when it is not trusted). */
type Via = ServerApiOptions & { transport: Transport };
type Transport = (host: string, port: number) => Promise<net.Socket>;

function addOnce(list: string[], value: string): string[] {
  return list.includes(value) ? list : [...list, value];
}

function checkServerInfo(info: ServerInfo | undefined, server: string): ServerInfo {
  if (!info || typeof info.commsThumbprint !== 'string') {
    throw new ReefError('REEF_BAD_RESPONSE', `${server} did not say which comms certificate to trust (no commsThumbprint); is it a Reef server?`);
  }
  return { ...info, commsThumbprint: normalizeThumbprint(info.commsThumbprint) };
}

/** The HTTP status of an API error; over comms, the one the REST API gives the same code. */
function statusOf(err: ReefError): number | undefined {
  return err instanceof ApiCallError ? err.status : (httpStatusOf(err.code) ?? undefined);
}

/** Runs an API call, turning the failures people hit while registering into advice. */
async function callApi<T>(options: Via, call: () => Promise<T>, hints: { conflictHint?: string; canRegisterOverComms?: boolean } = {}): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!(err instanceof ReefError)) throw err;
    const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
    if (options.serverThumbprint === undefined && cause?.code && UNTRUSTED_CERT_CODES.has(cause.code)) {
      throw await untrustedPortal(options, cause, hints.canRegisterOverComms === true);
    }
    if (options.serverThumbprint !== undefined && err.code === 'REEF_UNTRUSTED_CERTIFICATE' && !(err instanceof ApiCallError) && hints.canRegisterOverComms !== undefined) {
      throw await notThePinnedPortal(options, err, hints.canRegisterOverComms);
    }
    const status = statusOf(err);
    if (status === 409 && hints.conflictHint && !err.message.includes('--force')) {
      throw new ReefError(err.code, `${err.message.replace(/\.?\s*$/, '.')} ${hints.conflictHint}`);
    }
    if ((status === 401 || status === 403) && options.joinToken === undefined) {
      throw new ReefError(err.code, `${err.message.replace(/\.?\s*$/, '.')} Check --apiKey (create one with "reef apikey create").`);
    }
    throw err;
  }
}

async function untrustedPortal(options: Via, cause: NodeJS.ErrnoException, overComms: boolean): Promise<ReefError> {
  const url = new URL(options.server);
  const presented = await presentedThumbprint(url, options.transport).catch(() => null);
  const what = cause.code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || cause.code === 'SELF_SIGNED_CERT_IN_CHAIN' ? 'a self-signed certificate' : `a certificate that does not verify (${cause.message})`;
  const vouchers = options.caFile !== undefined ? `neither a public certificate authority nor the CA of ${options.caFile}` : 'no public certificate authority';
  return new ReefError(
    'REEF_UNTRUSTED_CERTIFICATE',
    `The server at ${url.origin} presented ${what}${presented ? ` with thumbprint ${presented}` : ''}, which ${vouchers} vouches for; nothing was sent. ` +
      `Reef servers use a self-signed certificate unless given another: run "reef server show-thumbprint" on the server and pass what it prints as --server-thumbprint` +
      (presented ? ` (if it prints ${presented}, that is this server)` : '') +
      (overComms
        ? `; if it prints another thumbprint, something stands in front of the portal (a TLS-terminating proxy, or an interceptor): pin nothing it presents, ` +
          `but register over the comms carrier with ${OVER_COMMS_OPTION} and --server-thumbprint <what the server prints>`
        : '') +
      `; or, when the portal has a certificate from your organisation's CA, pass that CA's certificate as --ca-file.`,
    { cause },
  );
}

/**
 * The portal presented another certificate than the pinned one. Said as interception or a
 * TLS-terminating proxy, never as "trust what was presented": only the server itself can
 * say which certificate is its own, and behind such a proxy no pin on the portal can reach
 * the server; registering over the carrier can (its inner TLS is end to end).
 */
async function notThePinnedPortal(options: Via, err: ReefError, overComms: boolean): Promise<ReefError> {
  const url = new URL(options.server);
  const pinned = normalizeThumbprint(options.serverThumbprint!);
  const presented = await presentedThumbprint(url, options.transport).catch(() => null);
  return new ReefError(
    'REEF_UNTRUSTED_CERTIFICATE',
    `The portal at ${url.origin} presented ${presented ? `a certificate with thumbprint ${presented}` : 'another certificate'}, not ${pinned} as given with --server-thumbprint; ` +
      'nothing was sent (the API key neither). Either a proxy that terminates TLS (nginx, a load balancer) stands in front of the portal and shows its own certificate, ' +
      'or something is intercepting the connection. Do not pin the certificate presented here unless "reef server show-thumbprint" on the server itself prints it.' +
      (overComms
        ? ` Behind a TLS-terminating proxy, register over the comms carrier instead: add ${OVER_COMMS_OPTION} with the carrier this Tentacle will poll on ` +
          `(--server-web-socket wss://<proxy host>/reef/comms when the proxy forwards the WebSocket path, or --server-comms-address / --server-comms-port), keeping --server-thumbprint ${pinned}. ` +
          "The carrier's inner TLS goes end to end to the Reef server and is pinned to that thumbprint, so the proxy never sees the API key."
        : ''),
    { cause: err },
  );
}

/** The portal certificate's thumbprint, read without trusting it, for the advice above only. */
async function presentedThumbprint(url: URL, transport: Transport): Promise<Thumbprint | null> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || 443);
  const raw = await transport(host, port);
  return new Promise((resolve) => {
    const socket = tls.connect({
      socket: raw,
      host,
      port,
      servername: net.isIP(host) ? undefined : host,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    const done = (value: Thumbprint | null) => {
      clearTimeout(timer);
      socket.destroy();
      raw.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => done(null), 5000);
    socket.once('error', () => done(null));
    socket.once('secureConnect', () => {
      const der = socket.getPeerCertificate()?.raw;
      done(der ? thumbprintOfDer(der) : null);
    });
  });
}


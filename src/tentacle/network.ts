/**
 * How this Tentacle reaches its servers: which carrier an address means, which fixed
 * address a host name maps to (`resolve`, like curl's --resolve), and which HTTP proxy to
 * go through (configured, or HTTPS_PROXY / NO_PROXY from the environment). Used for comms
 * (poll targets) and for REST calls while registering.
 */
import { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connectTcp, connectThroughProxy, connectWebSocket, proxyFromEnvironment, type PollTarget, type ProxySettings as ProxyEndpoint, type ProxySource } from '../comms/index.js';
import { ReefError } from '../errors.js';
import type { Thumbprint } from '../pki/thumbprint.js';
import { DEFAULT_SERVER_COMMS_PORT, type PolledServer, type ProxySettings, type TentacleConfig } from './config.js';

const CONNECT_TIMEOUT_MS = 15_000;

/** The fixed address configured for host:port, if any. */
export function resolvedAddress(config: TentacleConfig, host: string, port: number): string | undefined {
  return config.resolve?.[`${host.toLowerCase()}:${port}`];
}

/**
 * The proxy to use towards host:port: configured (with `configuredBy`, `tentacle proxy` or
 * `tentacle polling-proxy`), else from the environment; none when disabled.
 */
export function proxyFor(settings: ProxySettings | null, host: string, port: number, configuredBy: ProxySource): ProxyEndpoint | null {
  if (settings?.enabled === false) return null;
  if (settings?.host && settings.port) {
    return { host: settings.host, port: settings.port, username: settings.username, password: settings.password, configuredBy };
  }
  return proxyFromEnvironment(host, port);
}

/** A raw TCP connection to host:port for REST calls, honouring `resolve` and `tentacle proxy`. */
export function restTransport(config: TentacleConfig): (host: string, port: number) => Promise<Socket> {
  return (host, port) => {
    const proxy = proxyFor(config.proxy, host, port, 'tentacle proxy');
    const fixed = resolvedAddress(config, host, port);
    if (proxy) return connectThroughProxy(proxy, fixed ?? host, port, { timeoutMs: CONNECT_TIMEOUT_MS });
    return connectTcp(host, port, { resolveTo: fixed, timeoutMs: CONNECT_TIMEOUT_MS });
  };
}

/**
 * The poll target for a server address:
 * - `tcp://host[:port]` (or `host:port`): the dedicated comms port, 10943 by default;
 * - `https://host[:port]`: port 443 by default, SNI = host, for the server's front door or
 *   an nginx/HAProxy routing by SNI;
 * - `wss://host[:port]/path`: a WebSocket on the portal's port, the pinned TLS inside it.
 * Any of them through an HTTP CONNECT proxy when one applies.
 */
export function pollTargetFor(server: PolledServer, config: () => TentacleConfig, trusted: () => readonly Thumbprint[]): PollTarget {
  const raw = server.address.trim();
  let url: URL;
  try {
    url = new URL(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(raw) ? raw : `tcp://${raw}`);
  } catch {
    throw new ReefError('REEF_BAD_SERVER_ADDRESS', `Server address "${server.address}" is not valid: expected tcp://host:port, https://host[:port] or wss://host[:port]/path.`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (!host) throw new ReefError('REEF_BAD_SERVER_ADDRESS', `Server address "${server.address}" names no host.`);
  const settings = config();

  if (url.protocol === 'tcp:' || url.protocol === 'https:') {
    if (url.pathname && url.pathname !== '/') {
      throw new ReefError('REEF_BAD_SERVER_ADDRESS', `Server address "${server.address}" has a path; only wss:// addresses have one.`);
    }
    const port = url.port ? Number(url.port) : url.protocol === 'tcp:' ? DEFAULT_SERVER_COMMS_PORT : 443;
    const proxy = proxyFor(settings.pollingProxy, host, port, 'tentacle polling-proxy');
    // A pinned address applies with or without a proxy: the proxy is asked for the address
    // (it cannot resolve a name only this Tentacle knows), TLS still uses the name (SNI).
    const transport = (): Promise<Duplex> => {
      const fixed = resolvedAddress(config(), host, port);
      return proxy
        ? connectThroughProxy(proxy, fixed ?? host, port, { timeoutMs: CONNECT_TIMEOUT_MS })
        : connectTcp(host, port, { resolveTo: fixed, timeoutMs: CONNECT_TIMEOUT_MS });
    };
    const carrier = (url.protocol === 'tcp:' ? 'tcp' : 'https') + (proxy ? '+proxy' : '');
    return { host, port, servername: url.protocol === 'https:' ? host : undefined, transport, carrier, trusted };
  }
  if (url.protocol === 'wss:') {
    const port = url.port ? Number(url.port) : 443;
    const proxy = proxyFor(settings.pollingProxy, host, port, 'tentacle polling-proxy');
    const transport = (): Promise<Duplex> =>
      connectWebSocket(url.href, { proxy, resolveTo: resolvedAddress(config(), host, port), timeoutMs: CONNECT_TIMEOUT_MS });
    return { host, port, transport, carrier: 'websocket' + (proxy ? '+proxy' : ''), trusted };
  }
  throw new ReefError(
    'REEF_BAD_SERVER_ADDRESS',
    `Server address "${server.address}" uses ${url.protocol}//, which Reef does not know: expected tcp://, https:// or wss://.`,
  );
}

/**
 * Parses curl-style `--resolve HOST:PORT:ADDRESS` entries (the address may be an IPv6
 * literal, with or without brackets) into the config's `resolve` map.
 */
export function parseResolveEntries(entries: readonly string[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (const entry of entries) {
    const match = /^([^:\s]+):(\d{1,5}):\[?([^\]\s]+)\]?$/.exec(entry.trim());
    const port = match ? Number(match[2]) : 0;
    if (!match || port < 1 || port > 65535 || isIP(match[3]!) === 0) {
      throw new ReefError('REEF_INVALID_ARGUMENT', `--resolve "${entry}" is not HOST:PORT:ADDRESS with an IP address (e.g. polling.example.com:443:10.0.0.5).`);
    }
    map[`${match[1]!.toLowerCase()}:${port}`] = match[3]!;
  }
  return map;
}

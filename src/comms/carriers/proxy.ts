import net from 'node:net';
import { ReefError } from '../../errors.js';
import { aborted, connectTcp, hostPort } from './tcp.js';

/** An HTTP proxy reached with CONNECT (plain HTTP to the proxy; the tunnel carries our TLS). */
export interface ProxySettings {
  host: string;
  port: number;
  username?: string;
  password?: string;
  /**
   * Where this proxy was configured, named in messages so they send the user to the right
   * place: `tentacle polling-proxy` (comms), `tentacle proxy` (REST calls) or HTTPS_PROXY.
   */
  configuredBy?: ProxySource;
}

/** The Tentacle command that configures a proxy, or the environment variable it came from. */
export type ProxySource = 'tentacle polling-proxy' | 'tentacle proxy' | 'HTTPS_PROXY';

export interface ProxyConnectOptions {
  /** From dialling the proxy to the proxy's answer to CONNECT. */
  timeoutMs: number;
  /** Ignored: the proxy resolves the target's name. Accepted so carriers share one option shape. */
  resolveTo?: string;
  signal?: AbortSignal;
}

/** Largest response head accepted from a proxy; real ones send a few hundred bytes. */
export const MAX_PROXY_HEAD_BYTES = 16 * 1024;

const DEFAULT_PROXY_PORT = 80;

/**
 * The proxy for a connection to targetHost:targetPort according to the environment, as
 * curl reads it: `https_proxy` / `HTTPS_PROXY` (`http://user:pass@host:port`, or bare
 * `host:port`; port 80 when none), unless `no_proxy` / `NO_PROXY` exempts the target.
 * Null when no proxy applies. A value that is not an HTTP proxy address throws
 * REEF_BAD_PROXY, rather than silently connecting directly.
 */
export function proxyFromEnvironment(targetHost: string, targetPort: number, env: NodeJS.ProcessEnv = process.env): ProxySettings | null {
  const value = firstSet(env, 'https_proxy', 'HTTPS_PROXY');
  if (!value) return null;
  const noProxy = firstSet(env, 'no_proxy', 'NO_PROXY');
  if (noProxy && bypassesProxy(targetHost, targetPort, noProxy)) return null;
  return { ...parseProxyUrl(value), configuredBy: 'HTTPS_PROXY' };
}

/** Parses `http://user:pass@host:port` or `host:port`; credentials are percent-decoded. */
export function parseProxyUrl(value: string): ProxySettings {
  const text = value.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ReefError('REEF_BAD_PROXY', `The proxy address "${redact(withScheme)}" is not a valid URL; expected http://host:port.`);
  }
  if (url.protocol !== 'http:') {
    throw new ReefError(
      'REEF_BAD_PROXY',
      `The proxy address "${redact(withScheme)}" uses ${url.protocol.slice(0, -1)}; only HTTP proxies (http://host:port, CONNECT) are supported.`,
    );
  }
  if (!url.hostname) throw new ReefError('REEF_BAD_PROXY', `The proxy address "${redact(withScheme)}" names no host.`);
  const proxy: ProxySettings = { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port ? Number(url.port) : DEFAULT_PROXY_PORT };
  if (url.username) proxy.username = decodeURIComponent(url.username);
  if (url.password) proxy.password = decodeURIComponent(url.password);
  return proxy;
}

/**
 * Whether a `no_proxy` list exempts host:port. Entries are comma (or space) separated and
 * case-insensitive: `*` (everything), a host name (matches itself and its subdomains; a
 * leading `.` or `*.` is ignored, as curl does), an IP address, a CIDR block
 * (`10.0.0.0/8`), any of these with `:port` (only that port; IPv6 as `[::1]:443`).
 */
export function bypassesProxy(targetHost: string, targetPort: number, noProxy: string): boolean {
  const host = normalizeHost(targetHost);
  const hostIsIp = net.isIP(host) !== 0;
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    const { pattern, port } = splitPort(entry);
    if (port !== undefined && port !== targetPort) continue;
    if (pattern.includes('/')) {
      if (hostIsIp && inCidr(host, pattern)) return true;
      continue;
    }
    const name = normalizeHost(pattern.replace(/^\*?\./, ''));
    if (!name) continue;
    if (net.isIP(name)) {
      if (hostIsIp && sameIp(host, name)) return true;
      continue;
    }
    if (host === name || host.endsWith(`.${name}`)) return true;
  }
  return false;
}

export type ResponseHead = {
  status: number;
  statusLine: string;
  headers: Map<string, string>;
  /** Bytes of the head including the blank line; what follows belongs to the tunnel. */
  length: number;
};

/**
 * Parses an HTTP/1.x response head from the start of `data`: null while incomplete, the
 * head once the blank line has arrived. Lines may end in CRLF or a bare LF. Throws
 * REEF_PROXY_PROTOCOL on anything that is not a response head, or no end within `limit` bytes.
 */
export function parseResponseHead(data: Buffer, limit = MAX_PROXY_HEAD_BYTES): ResponseHead | null {
  const end = findHeadEnd(data, limit);
  if (end === -1) {
    // Reject garbage early instead of waiting for the limit or the timeout.
    const probe = data.subarray(0, Math.min(data.length, 8)).toString('latin1');
    if (!'HTTP/1.'.startsWith(probe.slice(0, 7))) throw protocolError(`it answered ${describeBytes(data)}`);
    if (data.length >= limit) throw protocolError(`its answer had no end of headers within ${limit} bytes`);
    return null;
  }
  const lines = data.subarray(0, end).toString('latin1').split(/\r?\n/);
  const statusLine = lines.shift() ?? '';
  const match = /^HTTP\/1\.[01] ([1-5]\d\d)(?: ([^\r\n]*))?$/.exec(statusLine);
  if (!match) throw protocolError(`it answered ${describeBytes(data)}`);
  const headers = new Map<string, string>();
  for (const line of lines) {
    if (line === '') break;
    const header = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!header) throw protocolError(`its answer has a malformed header line ${JSON.stringify(line.slice(0, 80))}`);
    const name = header[1]!.toLowerCase();
    const previous = headers.get(name);
    headers.set(name, previous === undefined ? header[2]! : `${previous}, ${header[2]!}`);
  }
  return { status: Number(match[1]), statusLine, headers, length: end };
}

/**
 * Opens a tunnel to targetHost:targetPort through an HTTP proxy with CONNECT (with Basic
 * credentials when given) and resolves with the socket once the proxy answers 2xx; the
 * caller's TLS then runs over it. Bytes that followed the proxy's head are put back.
 *
 * Errors: REEF_PROXY_UNREACHABLE (cannot connect to the proxy), REEF_PROXY_AUTH_REQUIRED
 * (407, or 401), REEF_PROXY_REFUSED (any other status), REEF_PROXY_PROTOCOL (not an HTTP answer),
 * REEF_PROXY_TIMEOUT, REEF_CALL_CANCELLED. The password appears in no message.
 */
export async function connectThroughProxy(
  proxy: ProxySettings,
  targetHost: string,
  targetPort: number,
  options: ProxyConnectOptions,
): Promise<net.Socket> {
  const proxyAt = hostPort(proxy.host, proxy.port);
  const target = hostPort(targetHost, targetPort);
  const deadline = Date.now() + options.timeoutMs;
  let socket: net.Socket;
  try {
    socket = await connectTcp(proxy.host, proxy.port, { timeoutMs: options.timeoutMs, signal: options.signal });
  } catch (err) {
    if (err instanceof ReefError && err.code === 'REEF_CONNECT_FAILED') {
      throw new ReefError(
        'REEF_PROXY_UNREACHABLE',
        `Could not reach the HTTP proxy at ${proxyAt} (to connect to ${target}): ${err.message} Check the proxy settings (${proxy.configuredBy ?? 'tentacle polling-proxy, tentacle proxy or HTTPS_PROXY'}).`,
        { cause: err },
      );
    }
    throw err;
  }

  const request = [`CONNECT ${target} HTTP/1.1`, `Host: ${target}`];
  if (proxy.username !== undefined || proxy.password !== undefined) {
    const credentials = Buffer.from(`${proxy.username ?? ''}:${proxy.password ?? ''}`, 'utf8').toString('base64');
    request.push(`Proxy-Authorization: Basic ${credentials}`);
  }
  socket.write(request.join('\r\n') + '\r\n\r\n');

  return new Promise((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0);
    const timer = setTimeout(
      () => fail(new ReefError('REEF_PROXY_TIMEOUT', `The HTTP proxy at ${proxyAt} did not answer CONNECT ${target} within ${options.timeoutMs} ms.`)),
      Math.max(0, deadline - Date.now()),
    );
    const onAbort = () => fail(aborted(`${target} through the proxy at ${proxyAt}`, options.signal!));
    const onError = (err: NodeJS.ErrnoException) =>
      fail(new ReefError('REEF_PROXY_PROTOCOL', `The HTTP proxy at ${proxyAt} failed while answering CONNECT ${target}: ${err.code ?? err.message}.`, { cause: err }));
    const onClose = () =>
      fail(
        new ReefError(
          'REEF_PROXY_PROTOCOL',
          `The HTTP proxy at ${proxyAt} closed the connection before answering CONNECT ${target}` +
            (received.length ? ` (after ${describeBytes(received)}).` : '.'),
        ),
      );
    // Read with 'readable' rather than 'data': once that listener is gone the socket is
    // back in its initial mode, so whoever takes it next (tls.connect, an HTTP client, a
    // 'data' listener) receives every byte, the unshifted ones first.
    const onReadable = () => {
      for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null; ) {
        received = received.length ? Buffer.concat([received, chunk]) : chunk;
      }
      let head: ResponseHead | null;
      try {
        head = parseResponseHead(received);
      } catch (err) {
        return fail(new ReefError('REEF_PROXY_PROTOCOL', `The HTTP proxy at ${proxyAt} is not speaking HTTP: ${(err as Error).message}`, { cause: err }));
      }
      if (!head) return;
      if (head.status >= 200 && head.status < 300) {
        cleanup();
        const rest = received.subarray(head.length);
        if (rest.length) socket.unshift(rest);
        // After the stream's own tick that ends 'readable' mode (see removeListener).
        return process.nextTick(resolve, socket);
      }
      fail(refusal(proxy, proxyAt, target, targetPort, head));
    };
    function fail(err: ReefError) {
      cleanup();
      socket.destroy();
      reject(err);
    }
    function cleanup() {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.off('readable', onReadable);
      socket.off('error', onError);
      socket.off('close', onClose);
    }
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('readable', onReadable);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}

function refusal(proxy: ProxySettings, proxyAt: string, target: string, targetPort: number, head: ResponseHead): ReefError {
  const status = head.statusLine.replace(/^HTTP\/1\.[01] /, '');
  // 407 is the standard answer; tinyproxy (and others) answer 401 to wrong credentials.
  if (head.status === 407 || head.status === 401) {
    const hasCredentials = proxy.username !== undefined || proxy.password !== undefined;
    const scheme = (head.headers.get('proxy-authenticate') ?? head.headers.get('www-authenticate'))?.split(/\s/)[0];
    const wants = scheme && scheme.toLowerCase() !== 'basic' ? ` It asks for ${scheme} authentication; Reef sends Basic.` : '';
    return new ReefError(
      'REEF_PROXY_AUTH_REQUIRED',
      `The HTTP proxy at ${proxyAt} requires authentication (${status}).` +
        (hasCredentials ? ` The proxy refused the username/password for user "${proxy.username ?? ''}"; ${checkCredentials(proxy)}` : ` ${setCredentials(proxy)}`) +
        wants,
    );
  }
  // Corporate proxies commonly allow CONNECT to 443 only (squid's default SSL_ports).
  const only443 =
    targetPort === 443
      ? ''
      : ' Most proxies allow CONNECT only to port 443: poll through 443 instead, with --server-comms-address https://<server> ' +
        "(the server's front door on 443, or nginx/HAProxy routing by SNI) or --server-web-socket wss://<server>/reef/comms " +
        "(a WebSocket on the portal's port); see docs/operations.md, \"Port 443\".";
  return new ReefError('REEF_PROXY_REFUSED', `The HTTP proxy at ${proxyAt} refused CONNECT ${target}: ${head.statusLine}.${only443}`);
}

function setCredentials(proxy: ProxySettings): string {
  if (proxy.configuredBy === 'HTTPS_PROXY') return 'Put them in the variable: HTTPS_PROXY=http://<user>:<password>@<host>:<port>.';
  const command = proxy.configuredBy ?? 'tentacle polling-proxy';
  return `Set it with: ${command} --proxyHost <host> --proxyPort <port> --proxyUsername <user> --proxyPassword <password>.`;
}

function checkCredentials(proxy: ProxySettings): string {
  if (proxy.configuredBy === 'HTTPS_PROXY') return 'check the user and password in HTTPS_PROXY.';
  return `check them with ${proxy.configuredBy ?? 'tentacle polling-proxy'}.`;
}

function findHeadEnd(data: Buffer, limit: number): number {
  const scan = data.subarray(0, limit);
  for (let i = scan.indexOf(0x0a); i !== -1; i = scan.indexOf(0x0a, i + 1)) {
    if (scan[i + 1] === 0x0a) return i + 2;
    if (scan[i + 1] === 0x0d && scan[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

function protocolError(detail: string): ReefError {
  return new ReefError('REEF_PROXY_PROTOCOL', `${detail}, not an HTTP/1.x response.`);
}

function describeBytes(data: Buffer): string {
  const shown = data.subarray(0, 40).toString('latin1').replace(/[^\x20-\x7e]/g, '.');
  return `${data.length} byte${data.length === 1 ? '' : 's'} starting ${JSON.stringify(shown)}`;
}

function firstSet(env: NodeJS.ProcessEnv, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = env[name]?.trim();
    if (value) return value;
  }
  return undefined;
}

/** Host for comparison: lower case, no IPv6 brackets, no trailing root dot. */
function normalizeHost(host: string): string {
  return host.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}

function splitPort(entry: string): { pattern: string; port?: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return { pattern: bracketed[1]!, port: bracketed[2] === undefined ? undefined : Number(bracketed[2]) };
  const withPort = /^([^:]+):(\d+)$/.exec(entry); // one colon only: more is a bare IPv6 address
  if (withPort) return { pattern: withPort[1]!, port: Number(withPort[2]) };
  return { pattern: entry };
}

function sameIp(a: string, b: string): boolean {
  const list = new net.BlockList();
  list.addAddress(b, net.isIPv6(b) ? 'ipv6' : 'ipv4');
  return list.check(a, net.isIPv6(a) ? 'ipv6' : 'ipv4');
}

function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const family = net.isIPv6(base ?? '') ? 'ipv6' : net.isIPv4(base ?? '') ? 'ipv4' : undefined;
  const prefix = Number(bits);
  if (!family || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 'ipv4' ? 32 : 128)) return false;
  const list = new net.BlockList();
  list.addSubnet(base!, prefix, family);
  return list.check(ip, net.isIPv6(ip) ? 'ipv6' : 'ipv4');
}

/** The proxy address for messages, with any password replaced. */
function redact(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):.*@/i, '$1:***@');
}

import http, { type IncomingMessage } from 'node:http';
import tls from 'node:tls';
import net from 'node:net';
import type { Readable } from 'node:stream';
import { ReefError, receivedCode, type ErrorCode } from '../errors.js';
import { normalizeThumbprint, thumbprintOfDer } from '../pki/thumbprint.js';
import type { ApiError } from './contract.js';
import { API_KEY_HEADER } from './headers.js';
// The page itself, not comms' index: the client needs one string, not the whole comms layer.
import { FRIENDLY_PAGE_TITLE } from '../comms/friendly-page.js';

export interface ApiClientOptions {
  /** https://host[:port] of the Reef portal/API. */
  server: string;
  apiKey?: string;
  /**
   * The portal certificate's thumbprint (or several, comma-separated). When given, the server
   * must present exactly that certificate (self-signed is fine); otherwise it must be valid for a public CA, or for
   * one of `trustedCas`.
   */
  serverThumbprint?: string;
  /**
   * PEM certificates of CAs trusted besides Node's public ones (an organisation's CA, from
   * `--ca-file`): the portal's certificate must chain to one of them and name the host.
   * Not with `serverThumbprint`, which trusts one certificate and nothing else.
   */
  trustedCas?: readonly string[];
  /** Per-request timeout; 0 for none (streams). */
  timeoutMs?: number;
  /** Opens the TCP connection (through a proxy, to a fixed address); direct otherwise. */
  transport?: (host: string, port: number) => Promise<net.Socket>;
  /**
   * How long one call may spend waiting out the server's request budget (429 with
   * Retry-After) before it fails with REEF_TOO_MANY_REQUESTS. Default 60 s; 0 never waits.
   */
  rateLimitWaitMs?: number;
}

/** A request refused for the budget was not processed, so any method may be sent again. */
const DEFAULT_RATE_LIMIT_WAIT_MS = 60_000;
/**
 * The refusals worth waiting out: the request budget and a server too busy checking keys.
 * Not REEF_RATE_LIMITED (failed keys from this address): the same key would fail again.
 */
const WAITED_OUT: ReadonlySet<ErrorCode> = new Set(['REEF_TOO_MANY_REQUESTS', 'REEF_BUSY']);

export interface RequestOptions {
  body?: unknown;
  /** A raw body to stream instead of JSON (file uploads). */
  stream?: Readable;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** Certificate verification failures that mean "no CA this client trusts vouches for it", as Node names them. */
export const UNTRUSTED_CERT_CODES: ReadonlySet<string> = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * A small HTTPS client for the Reef API. The TLS connection is made and its certificate
 * checked before the request is written, so the API key never reaches a server that is
 * not the pinned one.
 */
export class ApiClient {
  readonly baseUrl: URL;
  /** The thumbprints accepted: usually one; two while a server certificate rotation completes. */
  private readonly pin: string[] | undefined;
  private readonly ca: string[] | undefined;

  constructor(private readonly options: ApiClientOptions) {
    let url: URL;
    try {
      url = new URL(options.server);
    } catch {
      throw new ReefError('REEF_BAD_SERVER_ADDRESS', `"${options.server}" is not a URL; expected https://host[:port].`);
    }
    if (url.protocol !== 'https:') throw new ReefError('REEF_BAD_SERVER_ADDRESS', `The server URL must start with https:// (got ${options.server}).`);
    this.baseUrl = url;
    // "OLD,NEW" lets scripts keep working across a server certificate rotation (docs/operations.md).
    this.pin = options.serverThumbprint ? options.serverThumbprint.split(',').map((tp) => normalizeThumbprint(tp)) : undefined;
    if (this.pin && options.trustedCas?.length) {
      throw new ReefError('REEF_INVALID_ARGUMENT', 'Give either a server thumbprint (pin one certificate) or a CA file (trust what that CA issues), not both.');
    }
    // Node's `ca` replaces its public store, so the public roots are named again.
    this.ca = options.trustedCas?.length ? [...tls.rootCertificates, ...options.trustedCas] : undefined;
  }

  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, options);
    const text = await readAll(res);
    if (res.statusCode === 204 || text.length === 0) return undefined as T;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      if (text.includes(FRIENDLY_PAGE_TITLE)) {
        throw new ReefError(
          'REEF_WRONG_PORT',
          `${this.baseUrl.origin} is a Reef server's comms port, where Tentacles connect: this is the comms port; the API is on the HTTPS port ` +
            '(the port of the "REST API" line "reef server run" prints, set by --https-port). Point --server (REEF_SERVER) there.',
        );
      }
      throw new ReefError('REEF_BAD_RESPONSE', `The server answered ${method} ${path} with something that is not JSON (HTTP ${res.statusCode}).`);
    }
    return parsed as T;
  }

  /**
   * Opens a request and resolves with the response once its status is known; errors (4xx/5xx)
   * reject. A request over the server's budget is waited out and sent again (Retry-After,
   * within `rateLimitWaitMs` per call), except a streamed body, which cannot be sent twice.
   */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<IncomingMessage> {
    let budgetMs = options.stream ? 0 : (this.options.rateLimitWaitMs ?? DEFAULT_RATE_LIMIT_WAIT_MS);
    for (;;) {
      try {
        return await this.send(method, path, options);
      } catch (err) {
        const waitMs = err instanceof ApiCallError && WAITED_OUT.has(err.code) && err.retryAfterSeconds !== undefined ? err.retryAfterSeconds * 1000 : undefined;
        if (waitMs === undefined || waitMs > budgetMs) throw err;
        budgetMs -= waitMs;
        await new Promise((resolve) => setTimeout(resolve, waitMs));
      }
    }
  }

  private send(method: string, path: string, options: RequestOptions): Promise<IncomingMessage> {
    const url = new URL(path, this.baseUrl);
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (this.options.apiKey) headers[API_KEY_HEADER] = this.options.apiKey;
    let payload: Buffer | undefined;
    if (options.body !== undefined) {
      payload = Buffer.from(JSON.stringify(options.body));
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          method,
          host: url.hostname,
          port: url.port || 443,
          path: url.pathname + url.search,
          headers,
          createConnection: (_opts: unknown, done: (err: Error | null, socket?: net.Socket) => void) => {
            this.connect(url).then((socket) => done(null, socket), (err: Error) => done(err));
            return undefined;
          },
        } as http.RequestOptions,
        (res) => {
          if ((res.statusCode ?? 500) >= 400) {
            readAll(res).then((text) => reject(apiError(method, path, res.statusCode ?? 500, text, retryAfterOf(res))), reject);
            return;
          }
          resolve(res);
        },
      );
      if (timeoutMs > 0) {
        req.setTimeout(timeoutMs, () => req.destroy(new ReefError('REEF_DEADLINE_EXCEEDED', `${method} ${url.href} got no answer within ${timeoutMs} ms.`)));
      }
      req.on('error', (err) => reject(err instanceof ReefError ? err : this.connectError(url, err)));
      if (options.stream) options.stream.pipe(req);
      else req.end(payload);
    });
  }

  /** A failed connection; one whose certificate did not verify says how this client can be told to trust it. */
  private connectError(url: URL, err: NodeJS.ErrnoException): ReefError {
    if (!this.pin && err.code && UNTRUSTED_CERT_CODES.has(err.code)) {
      const trusted = this.ca ? 'the public CAs or the given CA file' : 'the public CAs';
      return new ReefError(
        'REEF_UNTRUSTED_CERTIFICATE',
        `The server at ${url.origin} presented a certificate that ${trusted} do not vouch for (${err.message}); nothing was sent. ` +
          `For the server's own certificate pass its thumbprint (--server-thumbprint; "reef server show-thumbprint" prints it); ` +
          `for one from your organisation's CA pass that CA's certificate (--ca-file).`,
        { cause: err },
      );
    }
    return new ReefError('REEF_CONNECT_FAILED', `Could not reach ${url.origin}: ${err.message}`, { cause: err });
  }

  private async connect(url: URL): Promise<tls.TLSSocket> {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || 443);
    const raw = this.options.transport ? await this.options.transport(host, port) : undefined;
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        socket: raw,
        host,
        port,
        servername: net.isIP(host) ? undefined : host,
        ALPNProtocols: ['http/1.1'],
        rejectUnauthorized: !this.pin,
        ...(this.ca ? { ca: this.ca } : {}),
      });
      socket.once('error', reject);
      socket.once('secureConnect', () => {
        socket.off('error', reject);
        if (this.pin) {
          const der = socket.getPeerCertificate()?.raw;
          const presented = der ? thumbprintOfDer(der) : '(none)';
          if (!this.pin.includes(presented)) {
            socket.destroy();
            return reject(
              new ReefError(
                'REEF_UNTRUSTED_CERTIFICATE',
                `The server at ${url.origin} presented certificate thumbprint ${presented}, but ${this.pin.join(' or ')} was expected. ` +
                  'Nothing was sent. Check the thumbprint with "reef server show-thumbprint" on the server.',
              ),
            );
          }
        }
        resolve(socket);
      });
    });
  }
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * An API answer with an error status. `code` is the server's (a code this version does not
 * know becomes REEF_PEER_ERROR, the original kept in `receivedAs`); an answer without a
 * Reef error body (a proxy's error page) is REEF_BAD_RESPONSE. `status` is the HTTP status.
 */
export class ApiCallError extends ReefError {
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
    receivedAs?: string,
    /** The server's Retry-After, in seconds, when it gave one. */
    readonly retryAfterSeconds?: number,
  ) {
    super(code, message, receivedAs === undefined ? undefined : { receivedAs });
  }
}

function apiError(method: string, path: string, status: number, text: string, retryAfterSeconds?: number): ReefError {
  try {
    const body = JSON.parse(text) as ApiError;
    if (typeof body?.error?.message === 'string') {
      const { code, receivedAs } = receivedCode(body.error.code);
      return new ApiCallError(status, code, body.error.message, receivedAs, retryAfterSeconds);
    }
  } catch {
    // not JSON: fall through
  }
  return new ApiCallError(status, 'REEF_BAD_RESPONSE', `${method} ${path} failed with HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}.`, undefined, retryAfterSeconds);
}

/** Retry-After in seconds (the delay form; an HTTP date, which Reef never sends, is ignored). */
function retryAfterOf(res: IncomingMessage): number | undefined {
  const value = res.headers['retry-after'];
  return value !== undefined && /^\d{1,6}$/.test(value) ? Number(value) : undefined;
}

/** Parses a text/event-stream response into events. */
export async function* readEvents(res: IncomingMessage): AsyncGenerator<{ event: string; data: string; id?: string }> {
  res.setEncoding('utf8');
  let buffer = '';
  for await (const chunk of res) {
    buffer += chunk as string;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      let id: string | undefined;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
        else if (field === 'id') id = value;
      }
      if (data.length) yield { event, data: data.join('\n'), id };
    }
  }
}

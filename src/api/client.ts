import http, { type IncomingMessage } from 'node:http';
import tls from 'node:tls';
import net from 'node:net';
import type { Readable } from 'node:stream';
import { ReefError } from '../errors.js';
import { normalizeThumbprint, thumbprintOfDer } from '../pki/thumbprint.js';
import type { ApiError } from './contract.js';
import { API_KEY_HEADER } from './headers.js';

export interface ApiClientOptions {
  /** https://host[:port] of the Reef portal/API. */
  server: string;
  apiKey?: string;
  /**
   * The portal certificate's thumbprint. When given, the server must present exactly that
   * certificate (self-signed is fine); otherwise it must be valid for a public CA.
   */
  serverThumbprint?: string;
  /** Per-request timeout; 0 for none (streams). */
  timeoutMs?: number;
  /** Opens the TCP connection (through a proxy, to a fixed address); direct otherwise. */
  transport?: (host: string, port: number) => Promise<net.Socket>;
}

export interface RequestOptions {
  body?: unknown;
  /** A raw body to stream instead of JSON (file uploads). */
  stream?: Readable;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * A small HTTPS client for the Reef API. The TLS connection is made and its certificate
 * checked before the request is written, so the API key never reaches a server that is
 * not the pinned one.
 */
export class ApiClient {
  readonly baseUrl: URL;
  private readonly pin: string | undefined;

  constructor(private readonly options: ApiClientOptions) {
    let url: URL;
    try {
      url = new URL(options.server);
    } catch {
      throw new ReefError('REEF_BAD_SERVER_URL', `"${options.server}" is not a URL; expected https://host[:port].`);
    }
    if (url.protocol !== 'https:') throw new ReefError('REEF_BAD_SERVER_URL', `The server URL must start with https:// (got ${options.server}).`);
    this.baseUrl = url;
    this.pin = options.serverThumbprint ? normalizeThumbprint(options.serverThumbprint) : undefined;
  }

  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, options);
    const text = await readAll(res);
    if (res.statusCode === 204 || text.length === 0) return undefined as T;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ReefError('REEF_BAD_RESPONSE', `The server answered ${method} ${path} with something that is not JSON (HTTP ${res.statusCode}).`);
    }
    return parsed as T;
  }

  /** Opens a request and resolves with the response once its status is known; errors (4xx/5xx) reject. */
  request(method: string, path: string, options: RequestOptions = {}): Promise<IncomingMessage> {
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
            readAll(res).then((text) => reject(apiError(method, path, res.statusCode ?? 500, text)), reject);
            return;
          }
          resolve(res);
        },
      );
      if (timeoutMs > 0) {
        req.setTimeout(timeoutMs, () => req.destroy(new ReefError('REEF_TIMEOUT', `${method} ${url.href} got no answer within ${timeoutMs} ms.`)));
      }
      req.on('error', (err) => reject(err instanceof ReefError ? err : new ReefError('REEF_CONNECT_FAILED', `Could not reach ${url.origin}: ${err.message}`, { cause: err })));
      if (options.stream) options.stream.pipe(req);
      else req.end(payload);
    });
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
      });
      socket.once('error', reject);
      socket.once('secureConnect', () => {
        socket.off('error', reject);
        if (this.pin) {
          const der = socket.getPeerCertificate()?.raw;
          const presented = der ? thumbprintOfDer(der) : '(none)';
          if (presented !== this.pin) {
            socket.destroy();
            return reject(
              new ReefError(
                'REEF_UNTRUSTED_CERTIFICATE',
                `The server at ${url.origin} presented certificate thumbprint ${presented}, but ${this.pin} was expected. ` +
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

function apiError(method: string, path: string, status: number, text: string): ReefError {
  try {
    const body = JSON.parse(text) as ApiError;
    if (body?.error?.message) {
      const err = new ReefError(body.error.code ?? `HTTP_${status}`, body.error.message);
      (err as ReefError & { status?: number }).status = status;
      return err;
    }
  } catch {
    // not JSON: fall through
  }
  return new ReefError(`HTTP_${status}`, `${method} ${path} failed with HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}.`);
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

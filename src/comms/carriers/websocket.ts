import type http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { createWebSocketStream, WebSocket, WebSocketServer } from 'ws';
import { ReefError } from '../../errors.js';
import { parseRetryAfter, ServerBusyError } from '../busy.js';
import { connectThroughProxy, type ProxySettings } from './proxy.js';
import { aborted, connectTcp } from './tcp.js';

/**
 * Largest WebSocket message this side sends. TLS hands over ciphertext in chunks as large
 * as the application's write (a 4 MiB write is one 4 MiB chunk), so chunks are cut into
 * messages of at most this size: the receiver's limit then holds whatever is written.
 */
export const WEBSOCKET_MESSAGE_BYTES = 64 * 1024;

/**
 * Largest WebSocket message either side accepts: room for WEBSOCKET_MESSAGE_BYTES many
 * times over, while bounding what a hostile peer can make us buffer (ws's own default is
 * 100 MiB).
 */
export const DEFAULT_WEBSOCKET_MAX_PAYLOAD = 1024 * 1024;

export interface WebSocketConnectOptions {
  /** Tunnel through this HTTP proxy first (CONNECT to the URL's host and port). */
  proxy?: ProxySettings | null;
  /**
   * Dial this address instead of resolving the URL's host; with a proxy, ask the proxy for
   * this address (it cannot resolve a name only this side pins). TLS and the Host header
   * keep the URL's name.
   */
  resolveTo?: string;
  /** From the first TCP attempt to the 101 Switching Protocols answer. */
  timeoutMs: number;
  signal?: AbortSignal;
  maxPayload?: number;
}

/**
 * Opens a WebSocket to `url` (wss://host[:port]/path; ws:// too, for tests and for TLS
 * offloaded on a private network) and returns it as a binary byte stream, for the comms
 * session's pinned mutual TLS to run inside.
 *
 * The outer TLS of wss:// deliberately verifies no certificate. Identity is proven by the
 * inner, pinned mutual TLS, end to end between tentacle and server. The outer layer is
 * only a way through the network: an HTTP proxy, load balancer or ingress that terminates
 * it with its own (corporate, CA-issued or self-signed) certificate cannot impersonate the
 * server, since it cannot complete the inner handshake, and it sees only ciphertext. Checking
 * the outer certificate would add nothing but failures where such devices sit.
 *
 * Errors: REEF_BAD_SERVER_ADDRESS; those of connectTcp / connectThroughProxy;
 * REEF_WEBSOCKET_REFUSED (an HTTP answer other than 101, with its status); REEF_SERVER_BUSY
 * (503 with Retry-After: a saturated server's refusal, ServerBusyError with the hint);
 * REEF_WEBSOCKET_FAILED (outer TLS or upgrade failed); REEF_WEBSOCKET_TIMEOUT; REEF_CALL_CANCELLED.
 */
export async function connectWebSocket(url: string, options: WebSocketConnectOptions): Promise<Duplex> {
  const target = parseWebSocketUrl(url);
  const where = target.url.href;
  const deadline = Date.now() + options.timeoutMs;
  const remaining = () => Math.max(1, deadline - Date.now());

  const raw = options.proxy
    ? await connectThroughProxy(options.proxy, options.resolveTo ?? target.host, target.port, { timeoutMs: options.timeoutMs, signal: options.signal })
    : await connectTcp(target.host, target.port, { resolveTo: options.resolveTo, timeoutMs: options.timeoutMs, signal: options.signal });
  const socket = target.secure ? await outerTls(raw, target.host, where, remaining(), options.signal) : raw;

  return new Promise<Duplex>((resolve, reject) => {
    const ws = new WebSocket(where, {
      createConnection: (() => socket) as unknown as typeof net.createConnection,
      perMessageDeflate: false, // see createWebSocketEndpoint: ciphertext does not compress
      maxPayload: options.maxPayload ?? DEFAULT_WEBSOCKET_MAX_PAYLOAD,
      followRedirects: false,
      skipUTF8Validation: true, // only binary frames are expected; text ones are bytes to us too
    });
    const timer = setTimeout(
      () => fail(new ReefError('REEF_WEBSOCKET_TIMEOUT', `The WebSocket at ${where} was not open within ${options.timeoutMs} ms.`)),
      remaining(),
    );
    const onAbort = () => fail(aborted(where, options.signal!));
    const onError = (err: Error) =>
      fail(new ReefError('REEF_WEBSOCKET_FAILED', `The WebSocket upgrade at ${where} failed: ${err.message}.`, { cause: err }));
    const onUnexpected = (_req: http.ClientRequest, res: http.IncomingMessage) => {
      // A saturated server answers the upgrade 503 with a retry hint (busy.ts).
      if (res.statusCode === 503 && res.headers['retry-after'] !== undefined) return fail(new ServerBusyError(where, parseRetryAfter(res.headers['retry-after'])));
      const status = `${res.statusCode ?? '?'} ${res.statusMessage ?? ''}`.trim();
      const location = res.headers.location ? ` (redirecting to ${res.headers.location})` : '';
      fail(
        new ReefError(
          'REEF_WEBSOCKET_REFUSED',
          `${where} answered ${status}${location} instead of accepting a WebSocket: check the URL path, which must be the server's --websocket-path.`,
        ),
      );
    };
    const onOpen = () => {
      cleanup();
      resolve(byteStream(ws));
    };
    function fail(err: ReefError) {
      cleanup();
      ws.on('error', () => {}); // terminate() while connecting reports the abort once more
      ws.terminate();
      socket.destroy();
      reject(err);
    }
    function cleanup() {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      ws.off('error', onError);
      ws.off('unexpected-response', onUnexpected);
      ws.off('open', onOpen);
    }
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    ws.on('error', onError);
    ws.on('unexpected-response', onUnexpected);
    ws.on('open', onOpen);
  });
}

/** A ws:// or wss:// URL (http:// and https:// are taken as their WebSocket twins). */
export function parseWebSocketUrl(text: string): { url: URL; host: string; port: number; secure: boolean } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ReefError('REEF_BAD_SERVER_ADDRESS', `"${text}" is not a URL; expected wss://host[:port]/path.`);
  }
  if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol !== 'wss:' && url.protocol !== 'ws:') {
    throw new ReefError('REEF_BAD_SERVER_ADDRESS', `"${text}" is not a WebSocket URL; expected wss://host[:port]/path.`);
  }
  if (url.username || url.password) {
    throw new ReefError('REEF_BAD_SERVER_ADDRESS', `The WebSocket URL must not carry credentials; the tentacle proves itself with its certificate.`);
  }
  const secure = url.protocol === 'wss:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return { url, host, port: url.port ? Number(url.port) : secure ? 443 : 80, secure };
}

function outerTls(raw: net.Socket, host: string, where: string, timeoutMs: number, signal?: AbortSignal): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      socket: raw,
      servername: net.isIP(host) ? undefined : host,
      rejectUnauthorized: false, // on purpose: see connectWebSocket
      ALPNProtocols: ['http/1.1'],
    });
    const timer = setTimeout(
      () => fail(new ReefError('REEF_WEBSOCKET_TIMEOUT', `The TLS handshake for ${where} did not complete within ${timeoutMs} ms.`)),
      timeoutMs,
    );
    const onAbort = () => fail(aborted(where, signal!));
    const onError = (err: NodeJS.ErrnoException) =>
      fail(
        new ReefError(
          'REEF_WEBSOCKET_FAILED',
          `The TLS handshake for ${where} failed (${err.code ?? err.message}); is the endpoint HTTPS? A plain HTTP endpoint needs a ws:// URL.`,
          { cause: err },
        ),
      );
    const onClose = () => fail(new ReefError('REEF_WEBSOCKET_FAILED', `${where} closed the connection during the TLS handshake.`));
    const onSecure = () => {
      cleanup();
      resolve(socket);
    };
    function fail(err: ReefError) {
      cleanup();
      socket.destroy();
      raw.destroy();
      reject(err);
    }
    function cleanup() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.off('secureConnect', onSecure);
    }
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('secureConnect', onSecure);
  });
}

export interface WebSocketEndpointOptions {
  /** The URL path served, e.g. `/reef/comms` (a trailing slash on requests is tolerated). */
  path: string;
  /** Largest message accepted from a client; DEFAULT_WEBSOCKET_MAX_PAYLOAD when absent. */
  maxPayload?: number;
  /** An upgraded connection, as a binary byte stream carrying the client's TLS. */
  onStream(stream: Duplex, request: http.IncomingMessage): void;
  /** Answers a browser (or curl) that opens the path without upgrading. */
  friendlyPage(req: http.IncomingMessage, res: http.ServerResponse): void;
  /**
   * Asked before each upgrade: a retry hint in ms while the server is saturated (the
   * upgrade is then answered 503 with Retry-After, and no WebSocket is made), else undefined.
   */
  busy?(): number | undefined;
}

export interface WebSocketEndpoint {
  /** For the HTTP server's 'upgrade' event: true if the path matched and the socket was taken. */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** For ordinary requests: true if the path matched and a response was given. */
  handleRequest(req: http.IncomingMessage, res: http.ServerResponse): boolean;
  /** Closes every WebSocket this endpoint accepted. */
  close(): void;
}

/**
 * The server's end of the WebSocket carrier, mounted on an existing HTTP(S) server at one
 * path. Requests for other paths are left to the caller (return false) to 404 or destroy.
 *
 * permessage-deflate is off: the payload is TLS ciphertext, which does not compress, and
 * each deflate context would cost some 300 KiB of zlib memory per connection on both
 * sides. What remains per connection is ws's parser and sender state, a few KiB.
 */
export function createWebSocketEndpoint(options: WebSocketEndpointOptions): WebSocketEndpoint {
  const path = normalizePath(options.path);
  const server = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: options.maxPayload ?? DEFAULT_WEBSOCKET_MAX_PAYLOAD,
    skipUTF8Validation: true,
    clientTracking: true,
  });
  const matches = (req: http.IncomingMessage) => {
    try {
      return normalizePath(new URL(req.url ?? '/', 'http://reef.invalid').pathname) === path;
    } catch {
      return false;
    }
  };

  return {
    handleUpgrade(req, socket, head) {
      if (!matches(req)) return false;
      const retryAfterMs = options.busy?.();
      if (retryAfterMs !== undefined) {
        answerBusy(socket, retryAfterMs);
        return true;
      }
      server.handleUpgrade(req, socket, head, (ws) => options.onStream(byteStream(ws), req));
      return true;
    },
    handleRequest(req, res) {
      if (!matches(req)) return false;
      if (req.method === 'GET' || req.method === 'HEAD') {
        options.friendlyPage(req, res);
      } else {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-length': '0', connection: 'close' });
        res.end();
      }
      return true;
    },
    close() {
      for (const ws of server.clients) ws.terminate();
      server.close();
    },
  };
}

/** 503 with Retry-After (whole seconds, at least 1) on the raw socket of an upgrade request, then closed. */
function answerBusy(socket: Duplex, retryAfterMs: number): void {
  const body = 'The Reef server is saturated; try again after the time in Retry-After.\r\n';
  socket.on('error', () => socket.destroy());
  socket.end(
    'HTTP/1.1 503 Service Unavailable\r\n' +
      `Retry-After: ${Math.max(1, Math.ceil(retryAfterMs / 1000))}\r\n` +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
  setTimeout(() => socket.destroy(), 2000).unref();
}

/** An open WebSocket as a byte stream, sending messages of at most WEBSOCKET_MESSAGE_BYTES. */
function byteStream(ws: WebSocket): Duplex {
  const stream = createWebSocketStream(ws);
  const write = stream._write.bind(stream);
  stream._write = (chunk: Buffer, encoding, callback) => {
    // In order; ws reports a failed send to the last callback as well.
    let offset = 0;
    for (; chunk.length - offset > WEBSOCKET_MESSAGE_BYTES; offset += WEBSOCKET_MESSAGE_BYTES) {
      write(chunk.subarray(offset, offset + WEBSOCKET_MESSAGE_BYTES), encoding, () => {});
    }
    write(offset ? chunk.subarray(offset) : chunk, encoding, callback);
  };
  return stream;
}

function normalizePath(path: string): string {
  const withSlash = path.startsWith('/') ? path : `/${path}`;
  return withSlash.length > 1 ? withSlash.replace(/\/+$/, '') || '/' : withSlash;
}

import type https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { API_KEY_HEADER } from '../../api/contract.js';
import type { Logger } from '../../logging.js';
import { readCookie, SESSION_COOKIE } from '../auth/sessions.js';
import { resolvePortalSocketLimits, type PortalSocketLimits } from './limits.js';

export interface PortalSocketGuard {
  /** Hands a routed socket to the HTTPS server, tracked and under deadline until it closes. */
  adopt(socket: net.Socket): void;
  /** Sockets held now. */
  readonly size: number;
  /** Destroys every socket it was handed; resolves once all have closed. */
  close(): Promise<void>;
}

interface Guarded {
  socket: net.Socket;
  /** Requests (and upgrades) being served: no headers deadline meanwhile. */
  active: number;
  headers?: NodeJS.Timeout;
}

/**
 * Tracks every socket the front door gives the portal and API, and enforces their deadlines
 * itself (see PortalSocketLimits): the headers deadline from handover and between requests,
 * the whole-body deadline of anonymous requests, and an idle timeout. Since the HTTPS server
 * never listens, its `closeAllConnections()` knows none of these sockets: shutdown goes
 * through `close()` here, which ends them all at once.
 */
export interface PortalSocketGuardOptions {
  limits?: Partial<PortalSocketLimits>;
  logger: Logger;
  /** A handed-over socket was upgraded (a Tentacle's WebSocket): it is comms' now. */
  onUpgrade?(socket: net.Socket): void;
}

export function createPortalSocketGuard(server: https.Server, options: PortalSocketGuardOptions): PortalSocketGuard {
  const limits = resolvePortalSocketLimits(options.limits);
  const { logger } = options;
  const guarded = new Map<net.Socket, Guarded>();

  server.setTimeout(limits.idleTimeoutMs);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const entry = guarded.get(handedOver(req.socket));
    if (!entry) return;
    entry.active++;
    clearTimeout(entry.headers);
    let body: NodeJS.Timeout | undefined;
    if (!req.complete && hasBody(req) && (isSignIn(req) || !presentsCredentials(req))) {
      body = setTimeout(() => {
        if (req.complete) return;
        logger.info({ remote: entry.socket.remoteAddress, method: req.method, path: pathOf(req) }, `https: an anonymous request body was not complete within ${limits.anonymousBodyTimeoutMs} ms; connection closed`);
        entry.socket.destroy();
      }, limits.anonymousBodyTimeoutMs);
    }
    res.once('close', () => {
      clearTimeout(body);
      entry.active--;
      if (entry.active === 0 && !entry.socket.destroyed) armHeaders(entry);
    });
  });
  server.on('upgrade', (req: IncomingMessage) => {
    // The socket now carries WebSocket frames (a Tentacle's comms): comms owns its deadlines.
    const entry = guarded.get(handedOver(req.socket));
    if (!entry) return;
    entry.active++;
    clearTimeout(entry.headers);
    options.onUpgrade?.(entry.socket);
  });

  function armHeaders(entry: Guarded): void {
    clearTimeout(entry.headers);
    entry.headers = setTimeout(() => {
      logger.debug({ remote: entry.socket.remoteAddress }, `https: no complete request headers within ${limits.headersTimeoutMs} ms; connection closed`);
      entry.socket.destroy();
    }, limits.headersTimeoutMs);
  }

  return {
    adopt(socket) {
      const entry: Guarded = { socket, active: 0 };
      guarded.set(socket, entry);
      socket.once('close', () => {
        clearTimeout(entry.headers);
        guarded.delete(socket);
      });
      armHeaders(entry);
      server.emit('connection', socket);
    },
    get size() {
      return guarded.size;
    },
    async close() {
      const sockets = [...guarded.keys()];
      await Promise.all(
        sockets.map((socket) => {
          const closed = new Promise<void>((resolve) => (socket.closed ? resolve() : socket.once('close', () => resolve())));
          socket.destroy();
          return closed;
        }),
      );
    },
  };
}

/**
 * The socket the front door handed over, from the TLS socket HTTP sees. Node keeps it as
 * `_parent` (not a documented property: test/server/https/socket-guard.test.ts fails if a
 * Node upgrade drops it).
 */
function handedOver(socket: Duplex): net.Socket {
  return ((socket as { _parent?: net.Socket | null })._parent ?? socket) as net.Socket;
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** The portal's sign-in form: read before any credential is checked, so always held to the anonymous deadline. */
const SIGN_IN_PATH = '/login';

function isSignIn(req: IncomingMessage): boolean {
  return pathOf(req) === SIGN_IN_PATH;
}

/** An API key or a session cookie: checked by the handlers before they read a body. */
function presentsCredentials(req: IncomingMessage): boolean {
  return req.headers[API_KEY_HEADER] !== undefined || req.headers.authorization !== undefined || readCookie(req.headers.cookie, SESSION_COOKIE) !== undefined;
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0]!.slice(0, 200);
}

import net from 'node:net';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../logging.js';
import { LISTEN_BACKLOG } from '../admission.js';
import { ConnectionCap } from '../connection-cap.js';
import { resolveFrontDoorLimits, type FrontDoorLimits } from '../limits.js';
import { COMMS_ALPN, TICKET_ALPN } from '../tls-config.js';
import { readPreamble } from './peek.js';
import { normalizeAddress, setAnnouncedAddress } from './remote-address.js';

export interface FrontDoorOptions {
  /** SNI names that mean "comms" (e.g. polling.example.com); compared case-insensitively. */
  pollingHostnames: readonly string[];
  /** Expect a PROXY protocol v1/v2 header first (nginx or HAProxy in front). Off by default. */
  proxyProtocol?: boolean;
  /** Preamble deadline and per-address cap; DEFAULT_FRONT_DOOR_LIMITS for what is not given. */
  limits?: Partial<FrontDoorLimits>;
  logger: Logger;
  /** A tentacle: its TLS is for the comms listener. */
  toComms(socket: net.Socket, carrier: 'sni' | 'alpn'): void;
  /** Everything else: the portal and API's HTTPS server. It stays in the per-address count until it closes. */
  toPortal(socket: net.Socket): void;
}

export interface FrontDoor {
  listen(port: number, host?: string): Promise<number>;
  /**
   * Takes a socket handed to the portal out of the per-address count: it became a
   * Tentacle's link (a WebSocket upgrade), bounded per certificate like any comms link.
   */
  leftForComms(socket: net.Socket): void;
  close(): Promise<void>;
}

const PLAIN_HTTP_ANSWER =
  'HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: 39\r\n\r\nThis port speaks HTTPS; use https://.\r\n';

/**
 * One TCP port (443) for the portal and for tentacles, without terminating TLS on the way:
 * the ClientHello is read, then put back, and the untouched TLS stream goes either to the
 * comms listener (SNI is a polling hostname, or the client offers ALPN `reef-comms` or
 * `reef-ticket`) or to
 * the portal. TLS for comms therefore still ends in the comms listener with the comms
 * certificate, and both sides' pinning is intact. In process: no extra hop.
 *
 * Each connection's preamble has its own deadline, so a slow or hostile client only ever
 * holds its own socket; and one source address holds at most maxConnectionsPerAddress
 * sockets being routed or served by the portal.
 */
export function createFrontDoor(options: FrontDoorOptions): FrontDoor {
  const pollingHostnames = new Set(options.pollingHostnames.map((name) => name.toLowerCase()));
  const pending = new Set<net.Socket>();
  const servers: net.Server[] = [];
  const { logger } = options;
  const limits = resolveFrontDoorLimits(options.limits);
  const proxyProtocol = options.proxyProtocol ?? false;
  const perAddress = new ConnectionCap(limits.maxConnectionsPerAddress);
  const releases = new WeakMap<net.Socket, () => void>();

  async function route(socket: net.Socket): Promise<void> {
    socket.on('error', () => socket.destroy());
    // Without a PROXY header the peer is the source: count it from accept. With one, the
    // peer is the proxy, and the source is known once the header is read.
    let admitted = proxyProtocol ? null : admit(socket, socket.remoteAddress);
    if (admitted === false) return;
    pending.add(socket);
    try {
      const preamble = await readPreamble(socket, { proxyProtocol, timeoutMs: limits.preambleTimeoutMs });
      const source = preamble.proxy?.command === 'PROXY' ? preamble.proxy.source : undefined;
      if (source) setAnnouncedAddress(socket, source);
      admitted ??= admit(socket, source?.address ?? socket.remoteAddress);
      if (admitted === false) return;
      if (preamble.buffered.length) socket.unshift(preamble.buffered);
      const hello = preamble.hello;
      if (hello.kind !== 'hello') {
        socket.end(PLAIN_HTTP_ANSWER);
        return;
      }
      if (hello.serverName && pollingHostnames.has(hello.serverName)) toComms(socket, 'sni');
      else if (hello.alpn.includes(COMMS_ALPN) || hello.alpn.includes(TICKET_ALPN)) toComms(socket, 'alpn');
      else options.toPortal(socket);
    } catch (err) {
      logger.debug({ remote: socket.remoteAddress, err: errorMessage(err) }, 'front door: connection dropped before routing');
      socket.destroy();
    } finally {
      pending.delete(socket);
    }
  }

  /** Counts the socket for its source address until it closes or goes to comms; false (and the socket destroyed) past the cap. */
  function admit(socket: net.Socket, address: string | undefined): boolean {
    const key = normalizeAddress(address ?? 'unknown');
    const admission = perAddress.admit(key);
    if (!admission.admitted) {
      const message = `front door: ${key} already holds ${perAddress.max} connections (limit maxConnectionsPerAddress); refusing more until some close`;
      if (admission.firstRefusal) logger.warn({ remote: key }, message);
      else logger.debug({ remote: key }, message);
      socket.destroy();
      return false;
    }
    releases.set(socket, admission.release);
    socket.once('close', admission.release);
    return true;
  }

  /** Comms bounds its connections per certificate: a fleet behind one NAT address is not one client. */
  function toComms(socket: net.Socket, carrier: 'sni' | 'alpn'): void {
    releases.get(socket)?.();
    options.toComms(socket, carrier);
  }

  return {
    leftForComms(socket) {
      releases.get(socket)?.();
    },
    listen(port, host = '0.0.0.0') {
      const server = net.createServer({ noDelay: true, pauseOnConnect: true }, (socket) => void route(socket));
      servers.push(server);
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
          server.off('error', reject);
          resolve((server.address() as net.AddressInfo).port);
        });
      });
    },
    async close() {
      // Stop listening and drop connections still being routed. Routed ones belong to the
      // comms listener or the portal now, which close them; net.Server's own close callback
      // would wait for them (and never fires for sockets TLS has wrapped), so it is not awaited.
      for (const server of servers) server.close();
      for (const socket of pending) socket.destroy();
    },
  };
}

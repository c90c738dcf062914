import net from 'node:net';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../logging.js';
import { COMMS_ALPN } from '../tls-config.js';
import { readPreamble } from './peek.js';
import { setAnnouncedAddress } from './remote-address.js';

export interface FrontDoorOptions {
  /** SNI names that mean "comms" (e.g. polling.example.com); compared case-insensitively. */
  pollingHostnames: readonly string[];
  /** Expect a PROXY protocol v1/v2 header first (nginx or HAProxy in front). Off by default. */
  proxyProtocol?: boolean;
  /** Reading the ClientHello (and PROXY header) must finish within this. */
  timeoutMs?: number;
  logger: Logger;
  /** A tentacle: its TLS is for the comms listener. */
  toComms(socket: net.Socket, carrier: 'sni' | 'alpn'): void;
  /** Everything else: the portal and API's HTTPS server. */
  toPortal(socket: net.Socket): void;
}

export interface FrontDoor {
  listen(port: number, host?: string): Promise<number>;
  close(): Promise<void>;
}

const PLAIN_HTTP_ANSWER =
  'HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: 39\r\n\r\nThis port speaks HTTPS; use https://.\r\n';

/**
 * One TCP port (443) for the portal and for tentacles, without terminating TLS on the way:
 * the ClientHello is read, then put back, and the untouched TLS stream goes either to the
 * comms listener (SNI is a polling hostname, or the client offers ALPN `reef-comms`) or to
 * the portal. TLS for comms therefore still ends in the comms listener with the comms
 * certificate, and both sides' pinning is intact. In process: no extra hop.
 *
 * Each connection's preamble has its own deadline, so a slow or hostile client only ever
 * holds its own socket.
 */
export function createFrontDoor(options: FrontDoorOptions): FrontDoor {
  const pollingHostnames = new Set(options.pollingHostnames.map((name) => name.toLowerCase()));
  const pending = new Set<net.Socket>();
  const servers: net.Server[] = [];
  const { logger } = options;

  async function route(socket: net.Socket): Promise<void> {
    pending.add(socket);
    socket.on('error', () => socket.destroy());
    try {
      const preamble = await readPreamble(socket, { proxyProtocol: options.proxyProtocol ?? false, timeoutMs: options.timeoutMs ?? 10_000 });
      if (preamble.proxy?.command === 'PROXY' && preamble.proxy.source) {
        setAnnouncedAddress(socket, `${preamble.proxy.source.address}:${preamble.proxy.source.port}`);
      }
      if (preamble.buffered.length) socket.unshift(preamble.buffered);
      const hello = preamble.hello;
      if (hello.kind !== 'hello') {
        socket.end(PLAIN_HTTP_ANSWER);
        return;
      }
      if (hello.serverName && pollingHostnames.has(hello.serverName)) options.toComms(socket, 'sni');
      else if (hello.alpn.includes(COMMS_ALPN)) options.toComms(socket, 'alpn');
      else options.toPortal(socket);
    } catch (err) {
      logger.debug({ remote: socket.remoteAddress, err: errorMessage(err) }, 'front door: connection dropped before routing');
      socket.destroy();
    } finally {
      pending.delete(socket);
    }
  }

  return {
    listen(port, host = '0.0.0.0') {
      const server = net.createServer({ noDelay: true, pauseOnConnect: true }, (socket) => void route(socket));
      servers.push(server);
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
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

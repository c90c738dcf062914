import tls from 'node:tls';
import { thumbprintOfDer, type Thumbprint } from '../pki/thumbprint.js';
import type { DialOptions } from './dialer.js';
import { dialTlsOptions, peerCertificateDer, TICKET_ALPN } from './tls-config.js';

/**
 * Tickets age from the full handshake that issued them, and Node's TLS server issues none
 * on a live link or on a resumed handshake (docs/protocol.md, section 6). A Tentacle whose
 * link outlives the ticket lifetime would come back after a server restart with a full
 * handshake. So every 6 hours (jittered, so a fleet spreads them) a connected poller makes
 * one extra full handshake beside its link, with ALPN `reef-ticket`, keeps the ticket it is
 * given and is then ended by the acceptor: the live link is not touched. A quarter of the
 * day-long ticket lifetime and key rotation: after the server's daily key rotation, the
 * fleet is resumable again within about 6 hours.
 */
export const SESSION_REFRESH_MS = 6 * 60 * 60 * 1000;

/** Where to dial, as for a comms connection; the acceptor's certificate must be one of `expected`. */
export type TicketFetch = Pick<DialOptions, 'identity' | 'host' | 'port' | 'servername' | 'transport' | 'expected'> & { timeoutMs: number };

/**
 * A fresh session from a full handshake with a pinned acceptor, or undefined when none
 * came (an older acceptor refuses the ALPN; a mismatch, a timeout, a failure). Never throws.
 */
export async function fetchSessionTicket(options: TicketFetch): Promise<{ session: Buffer; thumbprint: Thumbprint } | undefined> {
  let socket: tls.TLSSocket | undefined;
  try {
    const raw = options.transport ? await options.transport() : undefined;
    const connecting = tls.connect({ ...dialTlsOptions(options, raw), ALPNProtocols: [TICKET_ALPN] }); // the thumbprint is checked below
    socket = connecting;
    const sessions: Buffer[] = [];
    let thumbprint: Thumbprint | undefined;
    connecting.on('session', (session: Buffer) => sessions.push(session));
    connecting.once('secureConnect', () => {
      const der = connecting.alpnProtocol === TICKET_ALPN ? peerCertificateDer(connecting) : undefined;
      thumbprint = der ? thumbprintOfDer(der) : undefined;
      // Not the pinned acceptor (or not one that hands out tickets): nothing to wait for.
      if (!thumbprint || !options.expected.includes(thumbprint)) connecting.destroy();
    });
    connecting.on('data', () => {}); // nothing is expected; the acceptor ends the connection
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, options.timeoutMs);
      connecting.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      connecting.once('error', () => {});
    });
    if (!thumbprint || !options.expected.includes(thumbprint) || sessions.length === 0) return undefined;
    return { session: sessions.at(-1)!, thumbprint };
  } catch {
    return undefined;
  } finally {
    socket?.destroy();
  }
}

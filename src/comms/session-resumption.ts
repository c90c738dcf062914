import { createHash, randomBytes } from 'node:crypto';
import type { Thumbprint } from '../pki/thumbprint.js';

/**
 * How long a TLS session ticket the accepting side issues stays good (seconds): one day,
 * like the ticket keys (src/server/ticket-keys.ts), since a ticket is only as forward
 * secret as the keys that sealed it are short-lived (testssl.sh rates more than a day LOW).
 * Node's default is 300 s, which made every reconnect after five minutes of a link's life a
 * full handshake. A ticket is issued at the handshake only (Node cannot send a fresh one on a
 * live link), so connected Tentacles fetch a fresh one every few hours (ticket-refresh.ts).
 */
export const SESSION_LIFETIME_SECONDS = 24 * 60 * 60;

/** Node takes exactly one ticket key set: 16 bytes of name, 16 of HMAC key, 16 of AES key. */
export const TICKET_KEYS_BYTES = 48;

export function newTicketKeys(): Buffer {
  return randomBytes(TICKET_KEYS_BYTES);
}

/**
 * The TLS session ID context of the accepting side presenting `thumbprint`'s certificate.
 * OpenSSL resumes a session only in the context it was made in, so a ticket made while
 * presenting one certificate never resumes on another (an earlier certificate after a
 * rotation, another server sharing the ticket keys): the peer would otherwise go on
 * believing it talks to the certificate it pinned. Node's default context is a hash of
 * the process's command line, which differs between a cluster's nodes and may change
 * across a restart. OpenSSL takes at most 32 bytes.
 */
export function sessionIdContext(thumbprint: Thumbprint): string {
  return createHash('sha256').update(`reef-comms:${thumbprint}`).digest('hex').slice(0, 32);
}

/** The accepting side's session options for a context presenting `thumbprint`. */
export function resumptionOptions(thumbprint: Thumbprint, ticketKeys: Buffer) {
  return { ticketKeys, sessionIdContext: sessionIdContext(thumbprint), sessionTimeout: SESSION_LIFETIME_SECONDS };
}

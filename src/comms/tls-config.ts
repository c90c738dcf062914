import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { CertificateIdentity } from '../pki/certificate.js';

/** ALPN protocol a Tentacle offers; anything else on a comms port gets the friendly page. */
export const COMMS_ALPN = 'reef-comms';

/**
 * ALPN protocol a Tentacle offers (before `reef-comms`) when it dials only to register: a
 * server that accepts registrations over comms selects it and serves a registration-only
 * session (src/comms/registration-session.ts); an older server selects `reef-comms`, so
 * the Tentacle learns that it cannot (docs/protocol.md, "Registration over comms").
 */
export const REGISTRATION_ALPN = 'reef-register';

/**
 * ALPN protocol of a connection made only to get a fresh TLS session ticket
 * (session-resumption.ts, `fetchSessionTicket`): the acceptor ends it right after the
 * handshake, whose tickets the peer keeps. Nothing else is said on it.
 */
export const TICKET_ALPN = 'reef-ticket';

/**
 * TLS 1.3 preferred; TLS 1.2 allowed only with forward-secret AEAD suites. (The TLS 1.3
 * suites are all strong and are configured separately by Node.)
 */
const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export function baseTlsOptions(identity: CertificateIdentity) {
  return {
    key: identity.keyPem,
    cert: identity.certPem,
    minVersion: 'TLSv1.2' as const,
    ciphers: TLS12_CIPHERS,
    // Reef pins thumbprints itself; there is no CA chain to verify (see session.ts).
    rejectUnauthorized: false,
  };
}

/**
 * The dialling side's TLS context (our key and certificate, versions, ciphers), built once
 * per identity: parsing the PEM key and certificate costs more CPU than the rest of a
 * client's side of a handshake, and a tentacle (or a server dialling listening tentacles)
 * dials with the same identity again and again. Connect with `rejectUnauthorized: false`
 * beside it: the peer's thumbprint is checked after the handshake instead.
 */
export function clientSecureContext(identity: CertificateIdentity): tls.SecureContext {
  let context = clientContexts.get(identity);
  if (!context) {
    const { rejectUnauthorized: _, ...contextOptions } = baseTlsOptions(identity);
    context = tls.createSecureContext(contextOptions);
    clientContexts.set(identity, context);
  }
  return context;
}

const clientContexts = new WeakMap<CertificateIdentity, tls.SecureContext>();

/**
 * What every dial of ours passes to `tls.connect` besides ALPN and a session: our context,
 * no CA check (the thumbprint is checked after the handshake instead), and the server name
 * (SNI), by default `host` unless it is an IP address.
 */
export function dialTlsOptions(
  to: { identity: CertificateIdentity; host: string; port: number; servername?: string },
  socket: Duplex | undefined,
): tls.ConnectionOptions {
  return {
    secureContext: clientSecureContext(to.identity),
    rejectUnauthorized: false,
    host: to.host,
    port: to.port,
    socket,
    servername: to.servername ?? (net.isIP(to.host) ? undefined : to.host),
  };
}

/**
 * The accepting side negotiates `reef-comms` for tentacles and servers, and HTTP/1.1 for
 * browsers and curl (which get the friendly page); `reef-register` only where the acceptor
 * serves registrations (the server). A client offering only other protocols
 * (h2 alone) is refused at the handshake rather than left hanging.
 */
export function selectAlpn({ protocols }: { protocols: string[] }, registration = false): string | undefined {
  if (registration && protocols.includes(REGISTRATION_ALPN)) return REGISTRATION_ALPN;
  if (protocols.includes(TICKET_ALPN)) return TICKET_ALPN;
  if (protocols.includes(COMMS_ALPN)) return COMMS_ALPN;
  if (protocols.includes('http/1.1')) return 'http/1.1';
  return undefined;
}

/**
 * The peer's certificate (DER), or undefined when it showed none. `getPeerX509Certificate`
 * costs a few microseconds; `getPeerCertificate` builds a whole legacy object (subject,
 * key, fingerprints) and was a visible part of the server's CPU per new connection.
 * On the accepting side a resumed session shows the certificate its ticket carries.
 */
export function peerCertificateDer(socket: tls.TLSSocket): Buffer | undefined {
  return socket.getPeerX509Certificate()?.raw;
}

import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { errorFromPeer, ReefError } from '../errors.js';
import type { CertificateIdentity } from '../pki/certificate.js';
import { thumbprintOfDer, type Thumbprint } from '../pki/thumbprint.js';
import { isBusyAlert, ServerBusyError } from './busy.js';
import type { PeerInfo } from './peer.js';
import { COMMS_ALPN, dialTlsOptions, peerCertificateDer, REGISTRATION_ALPN } from './tls-config.js';
import { readVerdict } from './verdict.js';

export interface DialOptions {
  identity: CertificateIdentity;
  host: string;
  port: number;
  /** TLS server name (SNI). Defaults to `host` unless it is an IP address. */
  servername?: string;
  /** A byte stream already connected towards the peer (proxy tunnel, WebSocket); TCP to host:port otherwise. */
  transport?: () => Promise<Duplex>;
  /** The thumbprints the peer may present. */
  expected: readonly Thumbprint[];
  /** What to tell the operator when the peer presents another thumbprint. */
  explainMismatch(presented: Thumbprint): string;
  carrier: string;
  handshakeTimeoutMs: number;
  /** A TLS session from an earlier connection to the same, verified peer: makes reconnects cheap. */
  resume?: { session: Buffer; thumbprint: Thumbprint };
  /** Receives new TLS sessions, only once the peer's thumbprint has been verified. */
  onResumableSession?(session: Buffer, thumbprint: Thumbprint): void;
  /**
   * Dial for a registration-only session (ALPN `reef-register` first, `reef-comms` after it,
   * so an older server is recognised as one): the socket returned is for the Tentacle's
   * HTTP/2 client. The peer's thumbprint is checked before its answer about registration.
   */
  registering?: boolean;
}

export interface DialedSession {
  socket: tls.TLSSocket;
  peer: PeerInfo;
  resumed: boolean;
}

/**
 * Opens a comms connection: TLS with our certificate, ALPN `reef-comms`, the peer's
 * thumbprint checked against `expected`, then the acceptor's verdict on ours.
 *
 * A resumed TLS 1.3 session does not show the peer's certificate on this side (OpenSSL
 * keeps none in a client's session); that is safe because sessions are only kept after a
 * verified handshake, are offered only while their thumbprint is still expected, and an
 * acceptor presenting another certificate does not resume them (its session ID context
 * differs, session-resumption.ts). Resumption proves the peer holds that session's secret,
 * that is, the ticket keys of the acceptor that issued it.
 */
export async function dialSecure(options: DialOptions): Promise<DialedSession> {
  const raw = options.transport ? await options.transport() : undefined;
  const resume = options.resume && options.expected.includes(options.resume.thumbprint) ? options.resume : undefined;
  const socket = tls.connect({
    ...dialTlsOptions(options, raw), // the thumbprint is checked below
    ALPNProtocols: options.registering ? [REGISTRATION_ALPN, COMMS_ALPN] : [COMMS_ALPN],
    session: resume?.session,
  });
  socket.setNoDelay(true);
  const where = `${options.host}:${options.port}`;
  const timer = setTimeout(() => {
    socket.destroy(
      new ReefError('REEF_HANDSHAKE_TIMEOUT', `The TLS handshake with ${where} did not complete within ${options.handshakeTimeoutMs} ms.`),
    );
  }, options.handshakeTimeoutMs);

  let verifiedThumbprint: Thumbprint | undefined;
  const pendingSessions: Buffer[] = [];
  socket.on('session', (session: Buffer) => {
    if (verifiedThumbprint) options.onResumableSession?.(session, verifiedThumbprint);
    else pendingSessions.push(session);
  });

  let fail: (err: Error) => void = () => {};
  const onError = (err: Error) => fail(err);
  const onClose = () => fail(new ReefError('REEF_CONNECTION_LOST', `${where} closed the connection during the handshake.`));
  socket.on('error', onError);
  socket.on('close', onClose);
  try {
    await new Promise<void>((resolve, reject) => {
      fail = reject;
      socket.once('secureConnect', resolve);
    });
    const notComms = () => new ReefError('REEF_PROTOCOL_ERROR', `${where} is not a Reef comms listener (it did not negotiate ${COMMS_ALPN}).`);
    if (!options.registering && socket.alpnProtocol !== COMMS_ALPN) throw notComms();
    const resumed = socket.isSessionReused();
    // A certificate shown is checked whether or not the session was resumed.
    const der = peerCertificateDer(socket);
    const thumbprint = der ? thumbprintOfDer(der) : resumed && resume ? resume.thumbprint : undefined;
    if (!thumbprint) throw new ReefError('REEF_PROTOCOL_ERROR', `${where} presented no certificate.`);
    if (!options.expected.includes(thumbprint)) {
      throw new ReefError('REEF_UNTRUSTED_CERTIFICATE', options.explainMismatch(thumbprint));
    }
    verifiedThumbprint = thumbprint;
    if (options.registering && socket.alpnProtocol !== REGISTRATION_ALPN) {
      if (socket.alpnProtocol !== COMMS_ALPN) throw notComms();
      throw new ReefError(
        'REEF_REGISTRATION_UNAVAILABLE',
        `The Reef server at ${where} (its certificate is the pinned one) does not accept registrations over comms: it is older than this Tentacle. ` +
          'Nothing was sent. Upgrade the server, or register over its HTTPS API instead, from a network where no TLS-terminating proxy stands in between.',
      );
    }
    for (const session of pendingSessions.splice(0)) options.onResumableSession?.(session, thumbprint);

    fail = () => {}; // readVerdict reports errors and early closes itself
    const verdict = await readVerdict(socket);
    if (!verdict.ok) {
      throw errorFromPeer(verdict.code, verdict.message ?? `${where} refused the connection.`, 'REEF_REFUSED');
    }
    socket.off('error', onError);
    socket.off('close', onClose);
    return { socket, resumed, peer: { thumbprint, remoteAddress: where, carrier: options.carrier, resumed } };
  } catch (err) {
    socket.destroy();
    // A saturated server's refusal before TLS (busy.ts): said as such, so the Tentacle waits its hint instead of backing off.
    if (isBusyAlert(err)) throw new ServerBusyError(where, undefined);
    throw err instanceof ReefError ? err : new ReefError('REEF_CONNECT_FAILED', `Could not connect to ${where}: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

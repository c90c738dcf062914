import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logging.js';
import type { CertificateIdentity } from '../pki/certificate.js';
import { thumbprintOfDer } from '../pki/thumbprint.js';
import { LISTEN_BACKLOG, refuseBusy, type AdmissionControl } from './admission.js';
import { ConnectionCap } from './connection-cap.js';
import { createFriendlyPageServer } from './friendly-page.js';
import { remoteAddressOf } from './front-door/remote-address.js';
import type { CommsLimits } from './limits.js';
import type { PeerInfo, TrustCheck } from './peer.js';
import { requestedThumbprint } from './certificate-request.js';
import { newTicketKeys, resumptionOptions } from './session-resumption.js';
import { baseTlsOptions, COMMS_ALPN, peerCertificateDer, REGISTRATION_ALPN, selectAlpn, TICKET_ALPN } from './tls-config.js';
import { writeVerdict } from './verdict.js';

export interface AcceptorOptions {
  identity: CertificateIdentity;
  /**
   * Another certificate this end holds and presents when a peer asks for it by thumbprint
   * (certificate-request.ts): the server's previous one after a certificate rotation.
   */
  presentable?(thumbprint: string): CertificateIdentity | undefined;
  trust: TrustCheck;
  /**
   * The TLS session-ticket keys (48 bytes, session-resumption.ts): kept across restarts
   * (and shared by a cluster's nodes) so returning peers resume instead of a full
   * handshake. Random for this process when absent.
   */
  ticketKeys?: Buffer;
  /** What the refused peer and the log are told: which thumbprint came, what to run. */
  explainRefusal(presented: string, remoteAddress: string): string;
  limits: CommsLimits;
  logger: Logger;
  /**
   * Caps the connections one certificate may hold at once (the server's
   * maxConnectionsPerCertificate); `explain` is what a refused peer and the log are told.
   */
  perCertificate?: { max: number; explain(thumbprint: string, max: number): string };
  /** A trusted peer passed the verdict; the socket is now the caller's. */
  onSession(socket: tls.TLSSocket, peer: PeerInfo): void;
  /**
   * A peer was turned away, for metrics: `reason` is the code it was told in lower case
   * without `REEF_` (`untrusted_certificate`), or `tls_handshake_failed`. Peers without ALPN
   * `reef-comms` (browsers) get the friendly page and are not counted.
   */
  onRefused?(carrier: string, reason: string): void;
  /**
   * Set on the server: a peer that offers ALPN `reef-register` while `enabled()` gets a
   * registration-only session whatever its certificate (which it must present), at most
   * maxRegistrationSessionsPerAddress at once per source address.
   */
  registration?: { enabled(): boolean; onSession(socket: tls.TLSSocket, peer: PeerInfo): void };
  /**
   * Set on the server: a connection arriving while it is saturated is refused before TLS
   * with the busy alert (admission.ts), counted as `server_busy`.
   */
  admission?: AdmissionControl;
}

export interface Acceptor {
  /** Listens on TCP; resolves with the bound port (pass 0 for any). */
  listen(port: number, host?: string): Promise<number>;
  /** Hands over a raw byte stream that carries a client's TLS (front door, WebSocket). */
  accept(raw: Duplex, carrier: string): void;
  /**
   * For a carrier that refuses in its own terms (a WebSocket upgrade answered 503): while
   * the server is saturated, counts a refusal and gives the retry hint in ms; else undefined.
   */
  busy(carrier: string): number | undefined;
  /** Presents another certificate from now on (a completed rotation); open connections keep theirs. */
  setIdentity(identity: CertificateIdentity): void;
  /** New session-ticket keys (a rotation): tickets issued before no longer resume. */
  setTicketKeys(keys: Buffer): void;
  close(): Promise<void>;
}

/**
 * The accepting end of a comms connection: the server's polling listener and a listening
 * tentacle both use it. TLS ends here with our certificate; the peer must present a
 * certificate whose thumbprint `trust` accepts, else it is told why and disconnected.
 * Anything that does not negotiate ALPN `reef-comms` (a browser, curl) gets the friendly page.
 */
export function createAcceptor(options: AcceptorOptions): Acceptor {
  const { limits, logger } = options;
  const friendly = createFriendlyPageServer(limits.handshakeTimeoutMs);
  const open = new Set<Duplex>();
  const perCertificate = options.perCertificate ? new ConnectionCap(options.perCertificate.max) : null;
  const registrationsPerAddress = new ConnectionCap(limits.maxRegistrationSessionsPerAddress);
  const listeners: net.Server[] = [];
  // One TLS server per carrier, so each connection's carrier is known by which server
  // accepted it (a TLS socket wrapped around a WebSocket stream keeps no link back to that
  // stream). They share ticket keys, so a session resumes whichever way a peer returns.
  let ticketKeys = options.ticketKeys ?? newTicketKeys();
  const tlsServers = new Map<string, tls.Server>();
  let identity = options.identity;
  let requestedContexts = new WeakMap<CertificateIdentity, tls.SecureContext>();

  /** The certificate asked for by name when this end holds it; else the default (undefined). */
  function sniCallback(servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void {
    const wanted = requestedThumbprint(servername);
    const alternate = wanted && wanted !== identity.thumbprint ? options.presentable?.(wanted) : undefined;
    if (!alternate) return cb(null, undefined);
    let context = requestedContexts.get(alternate);
    if (!context) {
      context = tls.createSecureContext({ ...baseTlsOptions(alternate), ...resumptionOptions(alternate.thumbprint, ticketKeys) });
      requestedContexts.set(alternate, context);
    }
    logger.debug({ thumbprint: alternate.thumbprint }, 'comms: a peer asked for an earlier certificate by thumbprint');
    cb(null, context);
  }

  function tlsServerFor(carrier: string): tls.Server {
    const existing = tlsServers.get(carrier);
    if (existing) return existing;
    const server = tls.createServer({
      ...baseTlsOptions(identity),
      requestCert: true,
      ALPNCallback: (hello) => selectAlpn(hello, options.registration?.enabled() ?? false),
      SNICallback: sniCallback,
      handshakeTimeout: limits.handshakeTimeoutMs,
      ...resumptionOptions(identity.thumbprint, ticketKeys),
    });
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
      logger.debug({ err: err.code ?? err.message, carrier }, 'comms: TLS handshake failed');
      options.onRefused?.(carrier, 'tls_handshake_failed');
      options.admission?.handshakeEnded();
      socket.destroy();
    });
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      track(socket);
      handshakeEndsWith(socket);
      if (socket.alpnProtocol === REGISTRATION_ALPN && options.registration) return admitRegistration(socket, carrier, options.registration);
      // The handshake's session tickets are what the peer came for (TICKET_ALPN): end it.
      if (socket.alpnProtocol === TICKET_ALPN) return void setImmediate(() => endSoon(socket));
      if (socket.alpnProtocol !== COMMS_ALPN) {
        handshakeEnded(socket);
        return friendly.serve(socket);
      }
      verify(socket, carrier).catch((err) => {
        logger.warn({ err }, 'comms: could not complete a connection');
        options.onRefused?.(carrier, 'internal_error');
        socket.destroy();
      });
    });
    tlsServers.set(carrier, server);
    return server;
  }

  async function verify(socket: tls.TLSSocket, carrier: string): Promise<void> {
    const remoteAddress = remoteAddressOf(socket);
    const deadline = setTimeout(() => socket.destroy(), limits.handshakeTimeoutMs);
    const raw = peerCertificateDer(socket);
    if (!raw) {
      void writeVerdict(socket, {
        ok: false,
        code: 'REEF_NO_CLIENT_CERTIFICATE',
        message: 'This listener only accepts peers that present a client certificate; none was presented.',
      });
      logger.warn({ remote: remoteAddress }, 'comms: refused a peer without a client certificate');
      options.onRefused?.(carrier, 'no_client_certificate');
      return endSoon(socket, deadline);
    }
    const thumbprint = thumbprintOfDer(raw);
    if (!(await options.trust(thumbprint))) {
      const message = options.explainRefusal(thumbprint, remoteAddress);
      void writeVerdict(socket, { ok: false, code: 'REEF_UNTRUSTED_CERTIFICATE', message });
      logger.warn({ remote: remoteAddress, thumbprint }, `comms: refused: ${message}`);
      options.onRefused?.(carrier, 'untrusted_certificate');
      return endSoon(socket, deadline);
    }
    const admission = perCertificate?.admit(thumbprint);
    if (admission && !admission.admitted) {
      const message = options.perCertificate!.explain(thumbprint, perCertificate!.max);
      void writeVerdict(socket, { ok: false, code: 'REEF_TOO_MANY_CONNECTIONS', message });
      // Once per flood at warn; every further refusal at debug, so a flood cannot flood the log.
      if (admission.firstRefusal) logger.warn({ remote: remoteAddress, thumbprint }, `comms: refused: ${message}`);
      else logger.debug({ remote: remoteAddress, thumbprint }, 'comms: refused another connection over the per-certificate cap');
      options.onRefused?.(carrier, 'too_many_connections');
      return endSoon(socket, deadline);
    }
    if (admission) {
      // The trust check awaited: the peer may be gone already, and 'close' fires only once.
      if (socket.closed) admission.release();
      else socket.once('close', admission.release);
    }
    await writeVerdict(socket, { ok: true });
    clearTimeout(deadline);
    handshakeEnded(socket);
    if (socket.destroyed) return;
    const own = socket.getCertificate();
    const presented = own && 'raw' in own && own.raw ? thumbprintOfDer(own.raw) : undefined;
    // A resumed session's peer certificate comes from the ticket (which only this end's
    // ticket keys open), and went through `trust` above like any other.
    options.onSession(socket, { thumbprint, remoteAddress, carrier, resumed: socket.isSessionReused(), ...(presented ? { presented } : {}) });
  }

  /**
   * A registration session: no trust check (the certificate is what it asks to register),
   * but a certificate is required, and one source address holds only so many at once.
   */
  function admitRegistration(socket: tls.TLSSocket, carrier: string, registration: NonNullable<AcceptorOptions['registration']>): void {
    const remoteAddress = remoteAddressOf(socket);
    const deadline = setTimeout(() => socket.destroy(), limits.handshakeTimeoutMs);
    const raw = peerCertificateDer(socket);
    if (!raw) {
      void writeVerdict(socket, { ok: false, code: 'REEF_NO_CLIENT_CERTIFICATE', message: 'Registering over comms needs the Tentacle certificate it registers; none was presented.' });
      options.onRefused?.(carrier, 'no_client_certificate');
      return endSoon(socket, deadline);
    }
    const thumbprint = thumbprintOfDer(raw);
    const source = sourceAddress(remoteAddress);
    const admission = registrationsPerAddress.admit(source);
    if (!admission.admitted) {
      const message =
        `${source} already holds ${registrationsPerAddress.max} registration sessions with this Reef server, the most one address may ` +
        '(comms limit maxRegistrationSessionsPerAddress); this one was refused. Try again in a few seconds.';
      void writeVerdict(socket, { ok: false, code: 'REEF_TOO_MANY_CONNECTIONS', message });
      if (admission.firstRefusal) logger.warn({ remote: remoteAddress, thumbprint }, `comms: refused: ${message}`);
      options.onRefused?.(carrier, 'too_many_connections');
      return endSoon(socket, deadline);
    }
    socket.once('close', admission.release);
    void writeVerdict(socket, { ok: true }).then(() => {
      clearTimeout(deadline);
      handshakeEnded(socket);
      if (socket.destroyed) return;
      logger.info({ remote: remoteAddress, thumbprint, carrier }, 'comms: registration session opened');
      registration.onSession(socket, { thumbprint, remoteAddress, carrier });
    });
  }

  function endSoon(socket: tls.TLSSocket, deadline?: NodeJS.Timeout): void {
    clearTimeout(deadline);
    handshakeEnded(socket);
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  function track(socket: Duplex): void {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  }

  /**
   * A connection's handshake counts for admission from accept until its verdict is written
   * or it closes; before TLS completes, 'tlsClientError' ends it (every failure, timeout and
   * early close emits one).
   */
  const settled = new WeakSet<tls.TLSSocket>();
  function handshakeEndsWith(socket: tls.TLSSocket): void {
    if (options.admission) socket.once('close', () => handshakeEnded(socket));
  }
  function handshakeEnded(socket: tls.TLSSocket): void {
    if (!options.admission || settled.has(socket)) return;
    settled.add(socket);
    options.admission.handshakeEnded();
  }

  /**
   * When the server is saturated: counts and logs a refusal on `carrier` and gives the
   * retry hint to send (ms); otherwise undefined.
   */
  function busyHint(carrier: string): number | undefined {
    const admission = options.admission;
    const signal = admission?.busy();
    if (!admission || !signal) return undefined;
    if (admission.refused()) {
      logger.warn(
        { carrier, signal, handshakesInFlight: admission.handshakesInFlight, eventLoopDelayMs: Math.round(admission.eventLoopDelayMs) },
        'comms: saturated; refusing new connections before TLS with a retry hint until it catches up',
      );
    }
    options.onRefused?.(carrier, 'server_busy');
    return admission.limits.busyRetryAfterMs;
  }

  /** Before any TLS work: refuses the connection when the server is saturated; else counts its handshake. */
  function admitted(raw: Duplex, carrier: string): boolean {
    const admission = options.admission;
    if (!admission) return true;
    if (busyHint(carrier) !== undefined) {
      refuseBusy(raw);
      return false;
    }
    const refused = admission.admitted();
    if (refused) logger.info({ refused }, `comms: admitting connections again after refusing ${refused} while saturated`);
    admission.handshakeStarted();
    return true;
  }

  return {
    listen(port, host = '0.0.0.0') {
      const server = net.createServer({ noDelay: true }, (socket) => {
        if (!admitted(socket, 'tcp')) return;
        socket.on('error', () => socket.destroy());
        track(socket);
        tlsServerFor('tcp').emit('connection', socket);
      });
      listeners.push(server);
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
          server.off('error', reject);
          resolve((server.address() as net.AddressInfo).port);
        });
      });
    },
    accept(raw, carrier) {
      if (!admitted(raw, carrier)) return;
      raw.on('error', () => raw.destroy());
      track(raw);
      tlsServerFor(carrier).emit('connection', raw);
    },
    busy: busyHint,
    setIdentity(next) {
      identity = next;
      // The ticket keys stay (a cluster's nodes share them): a session made on the old
      // certificate still cannot resume on the new one, its session ID context differs.
      requestedContexts = new WeakMap();
      for (const server of tlsServers.values()) server.setSecureContext({ ...baseTlsOptions(next), ...resumptionOptions(next.thumbprint, ticketKeys) });
    },
    setTicketKeys(keys) {
      ticketKeys = keys;
      requestedContexts = new WeakMap();
      for (const server of tlsServers.values()) server.setTicketKeys(keys);
    },
    async close() {
      // net.Server#close waits for its connections to end, so stop listening first,
      // then end the connections, then wait.
      const stopped = listeners.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
      for (const socket of open) socket.destroy();
      friendly.close();
      await Promise.all(stopped);
    },
  };
}

/** The source of `address:port` (what remoteAddressOf gives) without the port; `::ffff:10.0.0.1` is `10.0.0.1`. */
export function sourceAddress(remote: string): string {
  const host = remote.replace(/:(\d+|\?)$/, '').replace(/^\[|\]$/g, '');
  return host.startsWith('::ffff:') ? host.slice(7) : host;
}

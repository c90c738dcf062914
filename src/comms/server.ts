import { EventEmitter } from 'node:events';
import type { Duplex, Readable } from 'node:stream';
import { isReefError, ReefError } from '../errors.js';
import { formatDuration } from '../format.js';
import { silentLogger, type Logger } from '../logging.js';
import type { CertificateIdentity } from '../pki/certificate.js';
import type { Thumbprint } from '../pki/thumbprint.js';
import { createAcceptor, type Acceptor } from './acceptor.js';
import { AdmissionControl } from './admission.js';
import { connectTcp, hostPort } from './carriers/tcp.js';
import { dialSecure, type DialedSession } from './dialer.js';
import { resolveLimits, type CommsLimits } from './limits.js';
import { dialListening, type DialAttempt } from './listening-dial.js';
import type { TrustCheck } from './peer.js';
import { LinkRegistry } from './registry.js';
import { serveRegistration, type RegistrationHandler } from './registration-session.js';
import { RpcClient, type CallObserver } from './rpc/client.js';
import type { CallOptions } from './rpc/types.js';

/** How the server reaches one tentacle. */
export interface TentacleAddress {
  thumbprint: Thumbprint;
  /** Name for messages. */
  name?: string;
  /** Set for a listening tentacle: the server dials it. Polling tentacles dial the server. */
  listening?: { host: string; port: number };
  /**
   * Other thumbprints a listening Tentacle may present as this one: the next certificate of
   * a Tentacle certificate rotation, recorded over the pinned link and not yet confirmed.
   */
  alternates?: readonly Thumbprint[];
}

export interface CommsServerOptions {
  identity: CertificateIdentity;
  /** Other certificates presented on request by thumbprint (AcceptorOptions.presentable). */
  presentable?(thumbprint: string): CertificateIdentity | undefined;
  /** Certificates to dial a listening Tentacle with when it refuses ours (the one before a rotation). */
  earlierIdentities?(): CertificateIdentity[];
  /** Which tentacle thumbprints may connect; asked on every connection, resumed or not. */
  trust: TrustCheck;
  /** TLS session-ticket keys kept across restarts (AcceptorOptions.ticketKeys). */
  ticketKeys?: Buffer;
  limits?: Partial<CommsLimits>;
  logger?: Logger;
  /** When a tentacle was last seen by anyone (the store knows more than this process). */
  lastSeenAt?(thumbprint: Thumbprint): Date | null | undefined;
}

export interface CommsServerEvents {
  /**
   * `reconnect`: the tentacle had connected before (to this process, or by `lastSeenAt` to
   * any node) and this is not merely another carrier beside a live connection.
   */
  connected: [client: RpcClient, reconnect: boolean];
  disconnected: [client: RpcClient, reason: Error | undefined];
  /** A tentacle was turned away or could not be dialled; `reason` is the code in lower case without `REEF_`. */
  refused: [carrier: string, reason: string];
  /** A call to a tentacle got its answer or failed (see CallObserver). */
  call: [method: string, seconds: number, errorCode: string | undefined];
  /** A call waited for a polling tentacle to connect, and how that ended. */
  pickup: [seconds: number, outcome: PickupOutcome];
}

export type PickupOutcome = 'connected' | 'timed_out' | 'cancelled' | 'shutdown';

/**
 * The server's side of comms: accepts polling tentacles (on its own port, or sockets
 * handed over by the front door and WebSocket endpoint), dials listening ones, and routes
 * each call to a live connection of the right tentacle.
 */
export class CommsServer extends EventEmitter<CommsServerEvents> {
  readonly links = new LinkRegistry();
  readonly limits: CommsLimits;
  private readonly options: CommsServerOptions;
  private readonly logger: Logger;
  private readonly acceptor: Acceptor;
  /** Refuses new connections before TLS while the server is saturated (limits maxHandshakesInFlight, maxEventLoopDelayMs). */
  readonly admission: AdmissionControl;
  /** Presented to polling tentacles and when dialling listening ones; changed by a completed rotation. */
  private identity: CertificateIdentity;
  private readonly dialing = new Map<Thumbprint, DialAttempt>();
  private readonly resumable = new Map<Thumbprint, Buffer>();
  private readonly idleSweep: NodeJS.Timeout;
  /** Aborted by close: calls still waiting for a tentacle to poll give up at once. */
  private readonly closing = new AbortController();
  private registration: RegistrationHandler | undefined;
  private readonly observeCall: CallObserver = (method, seconds, errorCode) => this.emit('call', method, seconds, errorCode);

  constructor(options: CommsServerOptions) {
    super();
    this.options = options;
    this.identity = options.identity;
    this.limits = resolveLimits(options.limits);
    this.logger = options.logger ?? silentLogger;
    this.admission = new AdmissionControl(this.limits);
    this.acceptor = createAcceptor({
      identity: options.identity,
      presentable: options.presentable,
      trust: options.trust,
      ticketKeys: options.ticketKeys,
      limits: this.limits,
      logger: this.logger,
      explainRefusal: (tp) =>
        `The Reef server does not trust the Tentacle certificate with thumbprint ${tp}: no registered machine has it. ` +
        'Register the Tentacle with "tentacle register-with" (or "register-worker"); if it was deleted on the server, register it again.',
      perCertificate: {
        max: this.limits.maxConnectionsPerCertificate,
        explain: (tp, max) =>
          `The Tentacle certificate with thumbprint ${tp} already holds ${max} connections to this Reef server, the most one certificate may ` +
          '(comms limit maxConnectionsPerCertificate); this connection was refused. A Tentacle needs one per carrier it polls on: ' +
          'check that no other machine runs with a copy of this certificate, then wait for its old connections to close.',
      },
      onSession: (socket, peer) => this.adopt(new RpcClient(socket, peer, this.limits, this.logger, this.observeCall)),
      onRefused: (carrier, reason) => this.emit('refused', carrier, reason),
      registration: {
        enabled: () => this.registration !== undefined,
        onSession: (socket, peer) => void serveRegistration(socket, peer, this.registration!, this.limits, this.logger),
      },
      admission: this.admission,
    });
    this.idleSweep = setInterval(() => this.closeIdleDialedLinks(), Math.max(1000, Math.min(30_000, this.limits.idleTimeoutMs / 4)));
    this.idleSweep.unref();
  }

  /** Starts the comms listener for polling tentacles; resolves with its port. */
  listen(port: number, host?: string): Promise<number> {
    return this.acceptor.listen(port, host);
  }

  /** Presents `identity` from now on (a completed certificate rotation); live connections keep theirs. */
  setIdentity(identity: CertificateIdentity): void {
    this.identity = identity;
    this.acceptor.setIdentity(identity);
    this.resumable.clear();
  }

  /** New TLS session-ticket keys (a rotation): tickets issued before no longer resume. */
  setTicketKeys(keys: Buffer): void {
    this.acceptor.setTicketKeys(keys);
  }

  /**
   * From now on, a Tentacle that dials to register (ALPN `reef-register`) on any carrier
   * gets a registration-only session whose one call `handler` answers (see
   * registration-session.ts). Until this is called, such a dial is treated as any other.
   */
  acceptRegistrations(handler: RegistrationHandler): void {
    this.registration = handler;
  }

  /** Takes a raw byte stream carrying a tentacle's TLS (from the front door or a WebSocket). */
  accept(raw: Duplex, carrier: string): void {
    this.acceptor.accept(raw, carrier);
  }

  /** While the server is saturated: counts a refusal on `carrier` and gives the retry hint (ms) for it to send; else undefined. */
  busy(carrier: string): number | undefined {
    return this.acceptor.busy(carrier);
  }

  async call(target: TentacleAddress, method: string, args: unknown, options: CallOptions = {}): Promise<unknown> {
    const client = await this.connectionFor(target, options.signal, options.pickupTimeoutMs, options.onWaiting);
    return client.call(method, args, options);
  }

  async callForBody(target: TentacleAddress, method: string, args: unknown, options: CallOptions = {}): Promise<{ result: unknown; body: Readable }> {
    const client = await this.connectionFor(target, options.signal, options.pickupTimeoutMs, options.onWaiting);
    return client.callForBody(method, args, options);
  }

  /**
   * A live connection to the tentacle: for a listening one, dialled now if needed (again
   * and again while it cannot be reached, up to the pickup timeout); for a polling one,
   * waiting up to the pickup timeout for it to connect.
   */
  async connectionFor(target: TentacleAddress, signal?: AbortSignal, waitMs?: number, onWaiting?: (note: string) => void): Promise<RpcClient> {
    const live = [target.thumbprint, ...(target.alternates ?? [])].map((tp) => this.links.pick(tp)).find((client) => client !== undefined);
    if (live) return live;
    const pickupTimeoutMs = waitMs ?? this.limits.pickupTimeoutMs;
    const waiting = signal ? AbortSignal.any([signal, this.closing.signal]) : this.closing.signal;
    if (target.listening) {
      const listening = { ...target, listening: target.listening };
      return dialListening({
        tentacle: describe(target),
        ...target.listening,
        pickupTimeoutMs,
        isPickupTimeout: waitMs === undefined,
        attempt: () => this.dial(listening),
        signal: waiting,
        stopped: () => this.notMade(target, signal, 'while dialling it'),
        logger: this.logger,
        onWaiting,
      });
    }
    const waitStarted = performance.now();
    const client = this.closing.signal.aborted ? null : await this.links.waitFor(target.thumbprint, pickupTimeoutMs, waiting);
    const outcome: PickupOutcome = client ? 'connected' : this.closing.signal.aborted ? 'shutdown' : signal?.aborted ? 'cancelled' : 'timed_out';
    this.emit('pickup', (performance.now() - waitStarted) / 1000, outcome);
    if (client) return client;
    if (outcome === 'shutdown' || outcome === 'cancelled') throw this.notMade(target, signal, 'while waiting for it to connect');
    const seen = this.links.lastSeenAt(target.thumbprint) ?? this.options.lastSeenAt?.(target.thumbprint) ?? null;
    throw new ReefError(
      'REEF_TENTACLE_NOT_CONNECTED',
      `${describe(target)} did not connect to collect its work within ${formatDuration(pickupTimeoutMs)}; ` +
        (seen ? `it was last seen ${seen.toISOString()} (${formatDuration(Date.now() - seen.getTime())} ago).` : 'it has never been seen by this server.') +
        ' Check that the Tentacle is running and can reach the server.',
    );
  }

  /** Why a call was given up before it was made: the server is closing, or the caller cancelled. */
  private notMade(target: TentacleAddress, signal: AbortSignal | undefined, during: string): ReefError {
    if (this.closing.signal.aborted || !signal?.aborted) return new ReefError('REEF_SHUTTING_DOWN', `The server is shutting down; the call to ${describe(target)} was not made.`);
    return new ReefError('REEF_CALL_CANCELLED', `The call to ${describe(target)} was cancelled ${during}.`);
  }

  /** Stops trusting a tentacle's live connections: closes them now. (New ones are refused by `trust`.) */
  disconnect(thumbprint: Thumbprint, reason: string): number {
    const clients = this.links.connections(thumbprint);
    for (const client of clients) {
      this.logger.info({ thumbprint, remote: client.peer.remoteAddress }, `comms: closing connection: ${reason}`);
      client.close(new ReefError('REEF_TRUST_REVOKED', reason));
    }
    this.resumable.delete(thumbprint);
    return clients.length;
  }

  async close(): Promise<void> {
    this.closing.abort();
    clearInterval(this.idleSweep);
    this.admission.close();
    await this.acceptor.close();
    const clients = this.links.all();
    for (const client of clients) client.close(new ReefError('REEF_SHUTTING_DOWN', 'The server is shutting down.'));
    await Promise.all(clients.map((client) => client.closed));
  }

  private adopt(client: RpcClient): RpcClient {
    const { thumbprint, carrier } = client.peer;
    // A reconnect: the tentacle is back on a carrier it held (the old link may not have
    // been noticed dead yet), or back at all after being seen before. A second carrier
    // next to a live one is not.
    const live = this.links.connections(thumbprint);
    const reconnect =
      live.length > 0
        ? live.some((other) => other.peer.carrier.replace(/\+proxy$/, '') === carrier)
        : this.links.lastSeenAt(thumbprint) !== undefined || this.options.lastSeenAt?.(thumbprint) != null;
    this.links.add(client);
    this.logger.info({ thumbprint, remote: client.peer.remoteAddress, carrier }, 'comms: tentacle connected');
    this.emit('connected', client, reconnect);
    void client.closed.then((reason) => {
      this.links.remove(client);
      this.logger.info({ thumbprint: client.peer.thumbprint, reason: reason?.message }, 'comms: tentacle disconnected');
      this.emit('disconnected', client, reason);
    });
    return client;
  }

  /**
   * One attempt to open a connection to a listening tentacle, shared by the calls that
   * need it meanwhile: TCP first (bounded by the handshake timeout, so its failures are
   * told apart from TLS ones), then TLS with the pin checked both ways.
   */
  private dial(target: TentacleAddress & { listening: { host: string; port: number } }): DialAttempt {
    const pending = this.dialing.get(target.thumbprint);
    if (pending) return pending;
    const { host, port } = target.listening;
    let tcpConnectedTo: string | undefined;
    // Ours first; a listening Tentacle that refuses it (offline through a whole certificate
    // rotation) is dialled again with the earlier certificate, which it still trusts.
    const identities = [this.identity, ...(this.options.earlierIdentities?.() ?? [])];
    const attemptWith = async (index: number): Promise<DialedSession> => {
      const identity = identities[index]!;
      let mismatch = false;
      try {
        const dialed = await dialSecure({
          identity,
          host,
          port,
          transport: async () => {
            const socket = await connectTcp(host, port, { timeoutMs: this.limits.handshakeTimeoutMs, signal: this.closing.signal });
            tcpConnectedTo = socket.remoteAddress;
            return socket;
          },
          expected: [target.thumbprint, ...(target.alternates ?? [])],
          carrier: 'listening',
          handshakeTimeoutMs: this.limits.handshakeTimeoutMs,
          explainMismatch: (presented) => {
            mismatch = true;
            return (
              `The Tentacle at ${hostPort(host, port)} presented certificate thumbprint ${presented}, but ${describe(target)} is registered with ${target.thumbprint}. ` +
              'Another machine may answer at that address (an address reused, a port forwarded elsewhere), or something may be intercepting the connection: ' +
              'compare with "tentacle show-thumbprint" on the machine itself. Only if its certificate was replaced on purpose, register it again with "tentacle register-with --force".'
            );
          },
          // Sessions are kept for our current certificate only.
          resume: index === 0 && this.resumable.has(target.thumbprint) ? { session: this.resumable.get(target.thumbprint)!, thumbprint: target.thumbprint } : undefined,
          onResumableSession: (session, thumbprint) => {
            if (index === 0) this.resumable.set(thumbprint, session);
          },
        });
        return { ...dialed, peer: { ...dialed.peer, presented: identity.thumbprint } };
      } catch (err) {
        if (mismatch || !isReefError(err, 'REEF_UNTRUSTED_CERTIFICATE') || index + 1 >= identities.length) throw err;
        this.logger.info({ tentacle: describe(target), presented: identity.thumbprint }, 'comms: the listening Tentacle does not trust this certificate; dialling again with the earlier one');
        return attemptWith(index + 1);
      }
    };
    const session = attemptWith(0).then(
      ({ socket, peer }) => this.adopt(new RpcClient(socket, peer, this.limits, this.logger, this.observeCall)),
      (err: unknown) => {
        this.emit('refused', 'listening', err instanceof ReefError ? err.code.replace(/^REEF_/, '').toLowerCase() : 'internal_error');
        throw err;
      },
    );
    const attempt: DialAttempt = {
      session,
      get tcpConnectedTo() {
        return tcpConnectedTo;
      },
    };
    this.dialing.set(target.thumbprint, attempt);
    const forget = () => this.dialing.delete(target.thumbprint);
    session.then(forget, forget);
    return attempt;
  }

  private closeIdleDialedLinks(): void {
    if (this.limits.idleTimeoutMs <= 0) return;
    const cutoff = Date.now() - this.limits.idleTimeoutMs;
    for (const client of this.links.all()) {
      if (client.peer.carrier === 'listening' && client.inflight === 0 && client.lastCallAt < cutoff) {
        this.logger.debug({ thumbprint: client.peer.thumbprint }, 'comms: closing idle connection to listening tentacle');
        client.close();
      }
    }
  }
}

function describe(target: TentacleAddress): string {
  return target.name ? `Tentacle "${target.name}" (${target.thumbprint})` : `Tentacle ${target.thumbprint}`;
}

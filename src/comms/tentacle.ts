import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Duplex } from 'node:stream';
import { errorMessage, isReefError } from '../errors.js';
import { silentLogger, type Logger } from '../logging.js';
import type { CertificateIdentity } from '../pki/certificate.js';
import type { Thumbprint } from '../pki/thumbprint.js';
import { createAcceptor, type Acceptor } from './acceptor.js';
import { backoffDelay, proxyAuthRetryDelay, RESTART_WINDOW_MS, restartRetryDelay } from './backoff.js';
import { busyRetryDelay, ServerBusyError } from './busy.js';
import { certificateRequestName } from './certificate-request.js';
import { dialSecure } from './dialer.js';
import { resolveLimits, type CommsLimits } from './limits.js';
import type { PeerInfo, TrustCheck } from './peer.js';
import { ServiceHost, type ServedConnection } from './rpc/host.js';
import { fetchSessionTicket, SESSION_REFRESH_MS } from './ticket-refresh.js';
import type { ServiceTable } from './rpc/types.js';

export interface TentacleCommsOptions {
  identity: CertificateIdentity;
  services: ServiceTable;
  limits?: Partial<CommsLimits>;
  logger?: Logger;
  /** Instance name, for the commands suggested in error messages. */
  instance?: string;
  /** How often a connected poller fetches a fresh TLS session ticket (ticket-refresh.ts), ±25%. */
  sessionRefreshMs?: number;
}

/** Where and how a polling tentacle reaches one server node. */
export interface PollTarget {
  host: string;
  port: number;
  servername?: string;
  /** A byte stream towards the server (proxy tunnel, WebSocket); plain TCP when absent. */
  transport?: () => Promise<Duplex>;
  carrier: string;
  /** The server thumbprints trusted for this node; read on every connection attempt. */
  trusted(): readonly Thumbprint[];
}

export interface PollerEvents {
  connected: [peer: PeerInfo, resumed: boolean];
  disconnected: [reason: Error | undefined];
  failed: [err: Error, retryInMs: number];
  closed: [];
}

/**
 * A tentacle's comms: polling loops (one per server node) and the listening endpoint,
 * all serving the same services.
 */
export class TentacleComms {
  readonly limits: CommsLimits;
  readonly host: ServiceHost;
  private readonly options: TentacleCommsOptions;
  private readonly logger: Logger;
  private readonly pollers = new Set<Poller>();
  private acceptor: Acceptor | undefined;
  private identity: CertificateIdentity;

  constructor(options: TentacleCommsOptions) {
    this.options = options;
    this.identity = options.identity;
    this.limits = resolveLimits(options.limits);
    this.logger = options.logger ?? silentLogger;
    this.host = new ServiceHost(options.services, this.limits, this.logger);
  }

  /** Starts polling one server node; the loop reconnects until closed. */
  poll(target: PollTarget): Poller {
    const poller = new Poller(target, this.identity, this.host, this.limits, this.logger, this.options.instance ?? 'Tentacle', this.options.sessionRefreshMs);
    this.pollers.add(poller);
    poller.once('closed', () => this.pollers.delete(poller));
    poller.start();
    return poller;
  }

  /** Listens for the server to dial in (listening mode); resolves with the bound port. */
  listen(port: number, host: string | undefined, trust: TrustCheck, trustedForMessages: () => readonly Thumbprint[]): Promise<number> {
    const instance = this.options.instance ?? 'Tentacle';
    this.acceptor ??= createAcceptor({
      identity: this.identity,
      trust,
      limits: this.limits,
      logger: this.logger,
      explainRefusal: (tp) =>
        `This Tentacle does not trust the server certificate with thumbprint ${tp} (it trusts: ${trustedForMessages().join(', ') || 'none'}). ` +
        checkBeforeTrusting(tp, instance),
      onSession: (socket, peer) => {
        this.logger.info({ remote: peer.remoteAddress, thumbprint: peer.thumbprint }, 'comms: server connected');
        this.host.serve(socket, peer);
      },
    });
    return this.acceptor.listen(port, host);
  }

  /**
   * Presents `identity` from now on (a Tentacle certificate rotation): polling loops drop
   * their link and dial again with it; the listening endpoint presents it to the next dial.
   * Links the server dialled stay until they close (the server closes them once it has the
   * new certificate).
   */
  setIdentity(identity: CertificateIdentity): void {
    this.identity = identity;
    this.acceptor?.setIdentity(identity);
    for (const poller of this.pollers) poller.useIdentity(identity);
  }

  /** Ends every connection with this server thumbprint, polling and listening. */
  disconnect(thumbprint: string): number {
    return this.host.disconnect(thumbprint);
  }

  async close(): Promise<void> {
    await Promise.all([...this.pollers].map((poller) => poller.close()));
    await this.acceptor?.close();
    this.host.close();
  }
}

/**
 * One polling loop: dial, serve calls until the link drops, wait, dial again. The first
 * retry comes within a second; repeated failures back off exponentially with full jitter
 * up to a minute, so a restarted server is not stampeded by its whole fleet at once.
 */
export class Poller extends EventEmitter<PollerEvents> {
  private closing = false;
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;
  private resume: { session: Buffer; thumbprint: Thumbprint } | undefined;
  /** When the full handshake that gave `resume` happened: the ticket ages from then. */
  private resumeSince: number | undefined;
  private current: ServedConnection | undefined;
  private lastError = '';
  connected = false;

  constructor(
    private readonly target: PollTarget,
    private identity: CertificateIdentity,
    private readonly host: ServiceHost,
    private readonly limits: CommsLimits,
    private readonly logger: Logger,
    private readonly instance: string,
    private readonly sessionRefreshMs = SESSION_REFRESH_MS,
  ) {
    super();
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Dials with `identity` from now on: the live link (made with the old one) is closed, and the loop dials again at once. */
  useIdentity(identity: CertificateIdentity): void {
    this.identity = identity;
    // A session resumed from the old certificate's handshake would present the old one.
    this.resume = undefined;
    this.current?.close();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.stop.abort();
    this.current?.close();
    await this.loop;
    this.emit('closed');
  }

  /**
   * While the link is up, fetches a fresh session ticket when the kept one is
   * `sessionRefreshMs` old (±25%), and then every `sessionRefreshMs`: not sooner after a
   * connect than a random part of a quarter period, so a fleet that just came back does not
   * do it all at once. Returns the function that stops it.
   */
  private refreshSessionWhileConnected(): () => void {
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const jittered = () => this.sessionRefreshMs * (0.75 + Math.random() * 0.5);
    const plan = (delayMs: number) => {
      timer = setTimeout(() => void refresh(), delayMs);
      timer.unref();
    };
    const refresh = async () => {
      const fresh = await fetchSessionTicket({
        identity: this.identity,
        host: this.target.host,
        port: this.target.port,
        servername: this.target.servername,
        transport: this.target.transport,
        expected: this.target.trusted(),
        timeoutMs: this.limits.handshakeTimeoutMs,
      });
      if (stopped) return;
      if (fresh) {
        this.resume = fresh;
        this.resumeSince = Date.now();
      }
      this.logger.debug({ server: `${this.target.host}:${this.target.port}`, refreshed: fresh !== undefined }, 'comms: asked the server for a fresh TLS session ticket');
      plan(jittered());
    };
    const due = this.resumeSince === undefined ? jittered() : this.resumeSince + jittered() - Date.now();
    plan(Math.max(due, Math.random() * (this.sessionRefreshMs / 4)));
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }

  private async run(): Promise<void> {
    const where = `${this.target.host}:${this.target.port}`;
    let attempt = 0;
    let proxyAuthAttempt = 0;
    /** When the last live link was lost: refusals soon after are a server restarting. */
    let linkLostAt = -Infinity;
    /**
     * Set after the server presented a certificate not trusted here: the next attempt asks
     * for one that is, by name (certificate-request.ts). A server that held a trusted
     * certificate before a rotation still presents it on request, so a Tentacle offline
     * through the whole rotation gets in and is told the new thumbprint.
     */
    let askFor: Thumbprint | undefined;
    while (!this.closing) {
      let presented: Thumbprint | undefined;
      const asked = askFor;
      askFor = undefined;
      try {
        const trusted = this.target.trusted();
        const identity = this.identity;
        const dialed = await dialSecure({
          identity,
          host: this.target.host,
          port: this.target.port,
          servername: asked ? certificateRequestName(asked) : this.target.servername,
          transport: this.target.transport,
          expected: trusted,
          carrier: this.target.carrier,
          handshakeTimeoutMs: this.limits.handshakeTimeoutMs,
          explainMismatch: (thumbprint) => {
            presented = thumbprint;
            return unexpectedServerCertificate(where, thumbprint, trusted, this.instance);
          },
          resume: asked ? undefined : this.resume,
          onResumableSession: (session, thumbprint) => {
            if (asked) return;
            this.resume = { session, thumbprint };
            this.resumeSince = Date.now();
          },
        });
        if (asked) this.logger.info({ server: where, thumbprint: asked }, 'comms: the server presented the certificate this Tentacle trusts when asked for it by thumbprint');
        if (this.closing) {
          dialed.socket.destroy();
          break;
        }
        if (identity !== this.identity) {
          // The certificate changed while this dial was under way (a certificate rotation): dial again with the new one.
          dialed.socket.destroy();
          this.resume = undefined;
          continue;
        }
        attempt = 0;
        proxyAuthAttempt = 0;
        this.lastError = '';
        this.connected = true;
        this.logger.info({ server: where, carrier: this.target.carrier, resumed: dialed.resumed }, 'comms: connected to server');
        this.emit('connected', dialed.peer, dialed.resumed);
        this.current = this.host.serve(dialed.socket, dialed.peer);
        const stopRefreshing = this.refreshSessionWhileConnected();
        const reason = await this.current.closed;
        stopRefreshing();
        this.current = undefined;
        this.connected = false;
        linkLostAt = Date.now();
        this.logger.info({ server: where, reason: reason?.message }, 'comms: disconnected from server');
        this.emit('disconnected', reason);
      } catch (err) {
        if (this.closing) break;
        const untried = presented && !asked ? this.target.trusted().find((tp) => tp !== presented) : undefined;
        if (untried) {
          // Not yet a failure: ask at once for the certificate trusted here.
          askFor = untried;
          this.logger.info({ server: where, presented, askFor }, 'comms: the server presented a certificate this Tentacle does not trust; asking it for the trusted one');
          continue;
        }
        const message = errorMessage(err);
        let delay: number;
        if (isReefError(err, 'REEF_PROXY_AUTH_REQUIRED')) {
          // Said as an error every time: nothing gets through until someone fixes it.
          delay = proxyAuthRetryDelay(proxyAuthAttempt++);
          this.logger.error(
            { server: where, retryInMs: delay },
            `comms: ${message} Next attempt in ${Math.round(delay / 60_000)} min: a refused proxy login is retried slowly, so that a wrong password cannot lock the account.`,
          );
        } else if (err instanceof ServerBusyError) {
          // The server is up but saturated: its hint (bounded, jittered) instead of the
          // exponential backoff, which it must not grow: it was no fault of this attempt.
          delay = busyRetryDelay(err.retryAfterMs);
          if (message !== this.lastError) this.logger.info({ server: where, retryInMs: delay }, `comms: ${message}`);
        } else if (isRefused(err) && Date.now() - linkLostAt < RESTART_WINDOW_MS) {
          delay = restartRetryDelay();
          if (message !== this.lastError) this.logger.info({ server: where, retryInMs: delay }, `comms: ${message} (the server is probably restarting)`);
        } else {
          delay = backoffDelay(attempt++);
          // The same failure every few seconds would drown the log; say it once, then quietly.
          if (message !== this.lastError) this.logger.warn({ server: where, retryInMs: delay }, `comms: ${message}`);
        }
        this.lastError = message;
        this.emit('failed', err as Error, delay);
        await sleep(delay, undefined, { signal: this.stop.signal }).catch(() => {});
        continue;
      }
      if (this.closing) break;
      await sleep(backoffDelay(attempt++), undefined, { signal: this.stop.signal }).catch(() => {});
    }
  }
}

/** Nothing listened at the address (a TCP reset in answer to the connect). */
function isRefused(err: unknown): boolean {
  const cause = (err as { cause?: unknown } | undefined)?.cause as NodeJS.ErrnoException | undefined;
  return cause?.code === 'ECONNREFUSED';
}

/**
 * The server presented a certificate this Tentacle does not trust. Said as a possible
 * interception first (a TLS-inspecting proxy or relay re-signs the link with its own
 * certificate): only the server itself can say which thumbprint is genuine, so the way to
 * trust a new certificate comes after the check, never as the first advice.
 */
function unexpectedServerCertificate(where: string, presented: Thumbprint, trusted: readonly Thumbprint[], instance: string): string {
  return (
    `The server at ${where} presented certificate thumbprint ${presented}, which this Tentacle does not trust ` +
    `(it trusts ${trusted.join(', ') || 'none'}). Something between this machine and the server may be intercepting ` +
    `the connection (a TLS-inspecting proxy or relay); nothing was sent. ` +
    checkBeforeTrusting(presented, instance)
  );
}

function checkBeforeTrusting(presented: Thumbprint, instance: string): string {
  return (
    `Compare ${presented} with what "reef server show-thumbprint" prints on the server itself. Only if they are the same ` +
    `(the server's certificate was replaced on purpose), trust it with: tentacle configure --instance ${instance} --trust ${presented}`
  );
}

import type { Duplex } from 'node:stream';
import { BUSY_ALERT } from './busy.js';
import type { CommsLimits } from './limits.js';

/**
 * Connections the kernel holds for a listener before the server accepts them (Linux caps
 * it at net.core.somaxconn, 4096 by default since 5.4). Node's default, 511, overflows in a
 * reconnect burst whenever the event loop is busy for a moment; the kernel then drops SYNs,
 * the client's TCP resends them 1, 3, 7 s later, and its handshake times out. Queued
 * instead, they are accepted (or refused with the busy alert) within the loop's delay.
 */
export const LISTEN_BACKLOG = 4096;

/** The bounds admission checks (server only; documented on CommsLimits). */
export type AdmissionLimits = Pick<CommsLimits, 'maxHandshakesInFlight' | 'maxEventLoopDelayMs' | 'busyRetryAfterMs'>;

/** Which bound a refusal was over, for logs. */
export type BusySignal = 'handshakes_in_flight' | 'event_loop_delay';

const SAMPLE_MS = 100;
/** Samples kept: the delay reported is the worst over this many (half a second). */
const WINDOW = 5;

/**
 * Counts handshakes in flight and samples the event loop's delay, and says whether a new
 * connection should be refused. One per server process's comms listener.
 */
export class AdmissionControl {
  private handshakes = 0;
  private readonly lateness: number[] = [];
  private readonly sampler: NodeJS.Timeout;
  private refusedInEpisode = 0;

  constructor(readonly limits: AdmissionLimits) {
    let expected = performance.now() + SAMPLE_MS;
    this.sampler = setInterval(() => {
      const now = performance.now();
      this.lateness.push(Math.max(0, now - expected));
      if (this.lateness.length > WINDOW) this.lateness.shift();
      expected = now + SAMPLE_MS;
    }, SAMPLE_MS);
    this.sampler.unref();
  }

  get handshakesInFlight(): number {
    return this.handshakes;
  }

  /** The event loop's worst delay over the last half second, in ms. */
  get eventLoopDelayMs(): number {
    return this.lateness.length ? Math.max(...this.lateness) : 0;
  }

  /** Over a bound: the signal that is; otherwise undefined. */
  busy(): BusySignal | undefined {
    const { maxHandshakesInFlight, maxEventLoopDelayMs } = this.limits;
    if (maxHandshakesInFlight > 0 && this.handshakes >= maxHandshakesInFlight) return 'handshakes_in_flight';
    if (maxEventLoopDelayMs > 0 && this.eventLoopDelayMs >= maxEventLoopDelayMs) return 'event_loop_delay';
    return undefined;
  }

  /** A connection was accepted; its handshake counts until handshakeEnded. */
  handshakeStarted(): void {
    this.handshakes++;
  }

  handshakeEnded(): void {
    this.handshakes = Math.max(0, this.handshakes - 1);
  }

  /** Counts a refusal; true for the first since connections were last admitted (log it once per episode). */
  refused(): boolean {
    return this.refusedInEpisode++ === 0;
  }

  /** A connection was admitted: the refusals of the episode that ended, if any (0 otherwise). */
  admitted(): number {
    const refused = this.refusedInEpisode;
    this.refusedInEpisode = 0;
    return refused;
  }

  close(): void {
    clearInterval(this.sampler);
  }
}

/**
 * Turns a raw connection away with the busy alert (busy.ts). The socket is half-closed and
 * drained rather than destroyed: closing it with the ClientHello unread would make the
 * kernel answer with a reset, which can reach the client before the alert does.
 */
export function refuseBusy(raw: Duplex): void {
  raw.on('error', () => raw.destroy());
  raw.end(BUSY_ALERT);
  raw.resume();
  setTimeout(() => raw.destroy(), 2000).unref();
}

/**
 * Every limit of a comms connection is an option with a documented default
 * (docs/protocol.md, "Limits"). Exceeding one ends that call or that connection with a
 * logged reason; nothing else on the server or tentacle is disturbed.
 */
export interface CommsLimits {
  /** Largest JSON argument or result frame of one call. Streamed bodies are not limited. */
  maxMessageBytes: number;
  /** Calls in flight on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); more wait their turn. */
  maxConcurrentCalls: number;
  /** From TCP accept to a completed TLS handshake and Reef verdict. */
  handshakeTimeoutMs: number;
  /** A connection the server dialled (listening tentacle) closes after this long without calls. */
  idleTimeoutMs: number;
  /** After this long without receiving anything, a side pings the other (0: no heartbeat). */
  heartbeatIntervalMs: number;
  /** Nothing at all received for this long means the link is dead: it is closed and its calls fail. */
  heartbeatTimeoutMs: number;
  /** Deadline of a call that names none. 0 means none. */
  defaultCallDeadlineMs: number;
  /** How long a call for a polling tentacle waits for it to connect. */
  pickupTimeoutMs: number;
  /**
   * Server only: open connections one Tentacle certificate may hold at once, on every
   * carrier together. A Tentacle holds one per carrier it polls on, briefly one more while
   * it reconnects; past the cap a connection is refused with REEF_TOO_MANY_CONNECTIONS, so
   * one compromised certificate cannot exhaust the server's descriptors and memory.
   */
  maxConnectionsPerCertificate: number;
  /**
   * Server only: a registration-only session (a Tentacle dialled with ALPN `reef-register`)
   * is closed this long after its verdict, answered or not.
   */
  registrationTimeoutMs: number;
  /** Server only: largest argument frame of the one registration call (a registration is a few hundred bytes). */
  maxRegistrationMessageBytes: number;
  /**
   * Server only: registration-only sessions one source address may hold at once. Their
   * certificates are not registered, so the per-certificate cap cannot bound them (anyone
   * can make certificates); failed API keys are limited per address as on the REST API.
   */
  maxRegistrationSessionsPerAddress: number;
  /**
   * Server only, admission control (docs/protocol.md): connections accepted whose TLS
   * handshake and verdict are not done yet. Past this, a new connection is refused before
   * any TLS work with the busy alert (src/comms/busy.ts), so the ones in flight finish
   * within handshakeTimeoutMs instead of all timing out together. 0: no bound.
   */
  maxHandshakesInFlight: number;
  /** Server only, admission control: the event loop's delay (worst of the last half second) past which new connections are refused. 0: not checked. */
  maxEventLoopDelayMs: number;
  /** Server only, admission control: the retry hint where a carrier can carry one (WebSocket `Retry-After`, whole seconds). */
  busyRetryAfterMs: number;
}

export const DEFAULT_LIMITS: Readonly<CommsLimits> = Object.freeze({
  maxMessageBytes: 16 * 1024 * 1024,
  maxConcurrentCalls: 256,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 5 * 60_000,
  heartbeatIntervalMs: 10_000,
  heartbeatTimeoutMs: 15_000,
  defaultCallDeadlineMs: 5 * 60_000,
  pickupTimeoutMs: 2 * 60_000,
  maxConnectionsPerCertificate: 8,
  registrationTimeoutMs: 20_000,
  maxRegistrationMessageBytes: 64 * 1024,
  maxRegistrationSessionsPerAddress: 16,
  maxHandshakesInFlight: 0,
  maxEventLoopDelayMs: 500,
  busyRetryAfterMs: 1000,
});

export function resolveLimits(overrides: Partial<CommsLimits> = {}): CommsLimits {
  return checked('comms', { ...DEFAULT_LIMITS, ...overrides }, ['maxConcurrentCalls', 'maxConnectionsPerCertificate', 'maxRegistrationSessionsPerAddress']);
}

/** Limits of the server's HTTPS port (the 443 front door), before a connection is routed. */
export interface FrontDoorLimits {
  /** Reading the PROXY header (when expected) and the TLS ClientHello must finish within this, counted from accept. */
  preambleTimeoutMs: number;
  /**
   * Connections one source address may hold at once while they are being routed or served
   * by the portal and API; more are closed at accept. With the PROXY protocol the address
   * the proxy announces counts, not the proxy's. Connections handed to comms leave the
   * count (a fleet behind one NAT address is bounded per certificate instead).
   */
  maxConnectionsPerAddress: number;
}

export const DEFAULT_FRONT_DOOR_LIMITS: Readonly<FrontDoorLimits> = Object.freeze({
  preambleTimeoutMs: 10_000,
  maxConnectionsPerAddress: 256,
});

export function resolveFrontDoorLimits(overrides: Partial<FrontDoorLimits> = {}): FrontDoorLimits {
  return checked('front door', { ...DEFAULT_FRONT_DOOR_LIMITS, ...overrides }, ['preambleTimeoutMs', 'maxConnectionsPerAddress']);
}

function checked<T extends object>(kind: string, limits: T, atLeastOne: readonly (keyof T & string)[]): T {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`${kind} limit ${name} must be a non-negative number, got ${value}`);
  }
  for (const name of atLeastOne) {
    if ((limits[name] as number) < 1) throw new RangeError(`${kind} limit ${name} must be at least 1, got ${limits[name]}`);
  }
  return limits;
}

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
  /** How often each side pings the other. */
  heartbeatIntervalMs: number;
  /** A ping unanswered this long means the link is dead: it is closed and its calls fail. */
  heartbeatTimeoutMs: number;
  /** Deadline of a call that names none. 0 means none. */
  defaultCallDeadlineMs: number;
  /** How long a call for a polling tentacle waits for it to connect. */
  pickupTimeoutMs: number;
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
});

export function resolveLimits(overrides: Partial<CommsLimits> = {}): CommsLimits {
  const limits = { ...DEFAULT_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`comms limit ${name} must be a non-negative number, got ${value}`);
  }
  if (limits.maxConcurrentCalls < 1) throw new RangeError('comms limit maxConcurrentCalls must be at least 1');
  return limits;
}

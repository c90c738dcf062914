/**
 * Deadlines of the sockets the front door hands to the portal and REST API. Node's own
 * `headersTimeout` and `requestTimeout` start only when an http.Server listens, and this one
 * never does (it is fed sockets), so these are enforced by the socket guard instead.
 */
export interface PortalSocketLimits {
  /**
   * From the handover (the TLS handshake included), and again after each answer, the next
   * request's headers must be complete within this; a client trickling them is cut off.
   */
  headersTimeoutMs: number;
  /**
   * A request presenting no credentials (no API key, no session cookie) must have sent its
   * whole body within this of its headers: a minimum rate of (body size / this). The only
   * such body is the sign-in form (a few KiB, capped by the portal), so a trickle is cut off; credentialed requests are checked
   * before their body is read, and a wrong credential's body is drained for at most 30 s.
   */
  anonymousBodyTimeoutMs: number;
  /** A connection with no byte in either direction this long is closed (streams and uploads keep theirs busy). */
  idleTimeoutMs: number;
}

export const DEFAULT_PORTAL_SOCKET_LIMITS: Readonly<PortalSocketLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  anonymousBodyTimeoutMs: 10_000,
  idleTimeoutMs: 120_000,
});

export function resolvePortalSocketLimits(overrides: Partial<PortalSocketLimits> = {}): PortalSocketLimits {
  const limits = { ...DEFAULT_PORTAL_SOCKET_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`portal socket limit ${name} must be a positive number of milliseconds, got ${value}`);
  }
  return limits;
}

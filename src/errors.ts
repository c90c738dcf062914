/**
 * One base error for everything Reef throws on purpose. `code` is stable (tests, API
 * clients and logs match on it); `message` says what happened and what to do next.
 */
export class ReefError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ReefError';
    this.code = code;
  }
}

export function isReefError(err: unknown, code?: string): err is ReefError {
  return err instanceof ReefError && (code === undefined || err.code === code);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A call failed because its connection went away under it (dropped, reset, heartbeat
 * lost), not because of what it asked: made again once the link is back, it may succeed.
 */
export const LINK_LOST_CODES: ReadonlySet<string> = new Set(['REEF_CONNECTION_LOST', 'REEF_CALL_RESET', 'REEF_HEARTBEAT_TIMEOUT']);

/**
 * A call worth making again (idempotent methods only) once the Tentacle is reachable: its
 * link was lost, could not be opened, refused the call for now (too many in flight), or
 * the peer was shutting down.
 */
export const RETRYABLE_CALL_CODES: ReadonlySet<string> = new Set([...LINK_LOST_CODES, 'REEF_CONNECT_FAILED', 'REEF_CALL_REFUSED', 'REEF_SHUTTING_DOWN']);

import { FORMER_CODES, codesWhere, isErrorCode, type ErrorCode } from './error-codes.js';

export type { ErrorCode } from './error-codes.js';

/**
 * One base error for everything Reef throws on purpose. `code` is stable (tests, API
 * clients and logs match on it) and one of the catalogue's (`error-codes.ts`); `message`
 * says what happened and what to do next.
 */
export class ReefError extends Error {
  readonly code: ErrorCode;
  /** The code exactly as another process sent it, when that is not this version's name for it. */
  declare readonly receivedAs?: string;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; receivedAs?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ReefError';
    this.code = code;
    if (options?.receivedAs !== undefined) this.receivedAs = options.receivedAs;
  }
}

export function isReefError(err: unknown, code?: ErrorCode): err is ReefError {
  return err instanceof ReefError && (code === undefined || err.code === code);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The code another process sent (an RPC error, a verdict, an API error body) as one of
 * ours: a former name becomes today's, and anything this version does not know (a newer
 * peer's code, or none) becomes `unknown`, keeping the original in `receivedAs`.
 */
export function receivedCode(sent: unknown, unknown: ErrorCode = 'REEF_PEER_ERROR'): { code: ErrorCode; receivedAs?: string } {
  if (isErrorCode(sent)) return { code: sent };
  const former = typeof sent === 'string' && Object.hasOwn(FORMER_CODES, sent) ? FORMER_CODES[sent] : undefined;
  const code = former ?? unknown;
  return typeof sent === 'string' ? { code, receivedAs: sent } : { code };
}

/** A ReefError for an error another process reported; see receivedCode. */
export function errorFromPeer(sent: unknown, message: string, unknown?: ErrorCode): ReefError {
  const { code, receivedAs } = receivedCode(sent, unknown);
  return new ReefError(code, message, receivedAs === undefined ? undefined : { receivedAs });
}

/**
 * A call failed because its connection went away under it (dropped, reset, heartbeat
 * lost), not because of what it asked: made again once the link is back, it may succeed.
 */
export const LINK_LOST_CODES: ReadonlySet<ErrorCode> = new Set(codesWhere((c) => c.retry === 'link-lost'));

/**
 * A call worth making again (idempotent methods only) once the Tentacle is reachable: its
 * link was lost, could not be opened, refused the call for now (too many in flight), or
 * the peer was shutting down.
 */
export const RETRYABLE_CALL_CODES: ReadonlySet<ErrorCode> = new Set(codesWhere((c) => c.retry === 'link-lost' || c.retry === 'reconnect'));

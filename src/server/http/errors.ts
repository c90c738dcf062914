import type { ServerResponse } from 'node:http';
import { ReefError } from '../../errors.js';
import type { Logger } from '../../logging.js';
import { sendJson } from './respond.js';

/**
 * A ReefError that already knows its HTTP status, extra headers (Allow, Retry-After) and
 * structured details. Store and engine errors stay plain ReefErrors; STATUS maps them.
 */
export class HttpError extends ReefError {
  readonly status: number;
  readonly details: unknown;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, options: { details?: unknown; headers?: Record<string, string> } = {}) {
    super(code, message);
    this.status = status;
    this.details = options.details;
    this.headers = options.headers ?? {};
  }
}

/** ReefError codes whose messages are written for the API caller, with their status. */
const STATUS: Readonly<Record<string, number>> = {
  REEF_BAD_JSON: 400,
  REEF_INVALID_REQUEST: 400,
  REEF_INVALID_ARGUMENT: 400,
  REEF_BAD_THUMBPRINT: 400,
  REEF_HASH_MISMATCH: 400,
  REEF_UNAUTHENTICATED: 401,
  REEF_BAD_API_KEY: 401,
  REEF_NOT_FOUND: 404,
  REEF_NO_ROUTE: 404,
  REEF_CONFLICT: 409,
  REEF_IN_USE: 409,
  REEF_TOO_LARGE: 413,
  REEF_NO_MACHINES: 422,
  REEF_SHUTTING_DOWN: 503,
};

export function statusOf(err: ReefError): number | undefined {
  return err instanceof HttpError ? err.status : STATUS[err.code];
}

/**
 * Answers with `{"error": {code, message, details?}}`. Anything that is not a known
 * ReefError becomes a 500 with a generic message; the cause goes to the log only.
 */
export function sendError(res: ServerResponse, err: unknown, logger: Logger, context: Record<string, unknown>): void {
  const status = err instanceof ReefError ? statusOf(err) : undefined;
  if (status === undefined || !(err instanceof ReefError)) {
    logger.error({ ...context, err }, 'api: unexpected error');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendJson(res, 500, { error: { code: 'REEF_INTERNAL', message: 'The server failed to handle this request; the cause is in the server log.' } });
    return;
  }
  if (res.headersSent) {
    // A stream already started: nothing valid can follow, so cut it.
    res.destroy();
    return;
  }
  if (err instanceof HttpError) for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
  const details = err instanceof HttpError ? err.details : undefined;
  sendJson(res, status, { error: { code: err.code, message: err.message, ...(details === undefined ? {} : { details }) } });
}

import type { ServerResponse } from 'node:http';
import { ERROR_CODES, httpStatusOf, type HttpErrorCode } from '../../error-codes.js';
import { ReefError } from '../../errors.js';
import type { Logger } from '../../logging.js';
import { bearerChallenge, WWW_AUTHENTICATE } from './challenges.js';
import { sendJson } from './respond.js';

/**
 * A ReefError raised by the HTTP layer, with extra headers (Allow, Retry-After) and
 * structured details. Its status, like every code's, is the catalogue's (error-codes.ts).
 */
export class HttpError extends ReefError {
  readonly status: number;
  readonly details: unknown;
  readonly headers: Record<string, string>;
  constructor(code: HttpErrorCode, message: string, options: { details?: unknown; headers?: Record<string, string> } = {}) {
    super(code, message);
    this.status = ERROR_CODES[code].http;
    this.details = options.details;
    this.headers = options.headers ?? {};
  }
}

/** The status to answer `err` with, or undefined when its message is not for API callers. */
export function statusOf(err: ReefError): number | undefined {
  return httpStatusOf(err.code) ?? undefined;
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
  // Every 401 names a scheme (RFC 9110 11.6.1), also one raised as a plain ReefError.
  if (status === 401 && !res.hasHeader(WWW_AUTHENTICATE)) res.setHeader(WWW_AUTHENTICATE, bearerChallenge());
  const details = err instanceof HttpError ? err.details : undefined;
  sendJson(res, status, { error: { code: err.code, message: err.message, ...(details === undefined ? {} : { details }) } });
}

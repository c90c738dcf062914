import type { IncomingMessage } from 'node:http';
import type { Actor } from '../audit/actor.js';
import { RequestLimiter } from '../auth/request-limiter.js';
import { readCookie, SESSION_COOKIE } from '../auth/sessions.js';
import { presentedKey } from './auth.js';
import { HttpError } from './errors.js';

/**
 * The API's request budgets (docs/security.md, "Rate limits"): an authenticated request
 * counts against its actor (the API key or portal user, whichever address it comes from),
 * any other against its client address (the PROXY protocol's when there is one). Failed
 * credentials have their own, stricter count per address (FailureLimiter).
 */
export class RequestBudgets {
  private readonly actors: RequestLimiter;
  private readonly addresses: RequestLimiter;

  constructor(limits: { requestsPerMinutePerActor: number; requestsPerMinutePerAddress: number }) {
    this.actors = new RequestLimiter({ perMinute: limits.requestsPerMinutePerActor });
    this.addresses = new RequestLimiter({ perMinute: limits.requestsPerMinutePerAddress });
  }

  /** True when the request carries an API key or a session cookie, so it will be charged to its actor. */
  static carriesCredentials(req: IncomingMessage): boolean {
    return presentedKey(req) !== undefined || readCookie(req.headers.cookie, SESSION_COOKIE) !== undefined;
  }

  /** Throws 429 REEF_TOO_MANY_REQUESTS with Retry-After when the address's budget is used up. */
  chargeAddress(address: string): void {
    const admission = this.addresses.take(address);
    if (!admission.allowed) {
      throw tooMany(`Too many requests without credentials from ${address} (limit ${this.addresses.perMinute} a minute); try again in ${admission.retryAfterSeconds} s.`, admission.retryAfterSeconds);
    }
  }

  /** Throws 429 REEF_TOO_MANY_REQUESTS with Retry-After when the actor's budget is used up. */
  chargeActor(actor: Actor): void {
    const admission = this.actors.take(`${actor.kind}:${actor.id ?? actor.name}`);
    if (!admission.allowed) {
      const who = actor.kind === 'api-key' ? `API key "${actor.name}"` : `${actor.kind} "${actor.name}"`;
      throw tooMany(`Too many requests by ${who} (limit ${this.actors.perMinute} a minute); try again in ${admission.retryAfterSeconds} s.`, admission.retryAfterSeconds);
    }
  }
}

function tooMany(message: string, seconds: number): HttpError {
  return new HttpError('REEF_TOO_MANY_REQUESTS', message, { headers: { 'retry-after': String(seconds) } });
}

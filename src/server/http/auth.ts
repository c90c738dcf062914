import type { IncomingMessage } from 'node:http';
import { API_KEY_HEADER } from '../../api/contract.js';
import { apiKeyCacheFor, verifyApiKey } from '../auth/apikeys.js';
import type { FailureLimiter } from '../auth/failure-limiter.js';
import { findJoinToken, isJoinTokenFormat } from '../auth/join-tokens.js';
import { authorize, type Actor } from '../auth/roles.js';
import { HashingBusyError } from '../auth/scrypt-pool.js';
import { CSRF_HEADER, csrfMatches, findSession, readCookie, SESSION_COOKIE } from '../auth/sessions.js';
import { clientAddress } from '../https/client-address.js';
import type { ApiKey, JoinToken, Session, Store } from '../store/types.js';
import { bearerChallenge, SESSION_CHALLENGE, WWW_AUTHENTICATE } from './challenges.js';
import { HttpError } from './errors.js';
import { isReefError } from '../../errors.js';

/**
 * API key authentication: the key comes in X-Reef-ApiKey or as `Authorization: Bearer`.
 * Attempts are counted per remote address before they are checked (FailureLimiter.admit),
 * so parallel guesses cannot overrun the limit; past the limit that address is refused
 * outright (even with a right key) until its oldest counted failure is a minute old, so
 * guessing keys costs a minute per handful of guesses.
 */

/** The presented key, or undefined when the request carries none. */
export function presentedKey(req: IncomingMessage): string | undefined {
  const header = req.headers[API_KEY_HEADER];
  const value = Array.isArray(header) ? header[0] : header;
  if (value !== undefined && value.trim() !== '') return value.trim();
  const authorization = req.headers.authorization;
  if (authorization) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  return undefined;
}

function rateLimited(address: string, seconds: number): HttpError {
  return new HttpError('REEF_RATE_LIMITED', `Too many failed API key attempts from ${address}; try again in ${seconds} s.`, {
    headers: { 'retry-after': String(seconds) },
  });
}

export async function authenticate(req: IncomingMessage, store: Store, limiter: FailureLimiter): Promise<ApiKey> {
  return authenticateKey(presentedKey(req), clientAddress(req), store, limiter);
}

/**
 * The checks of `authenticate` on a key however it came (an API header, or the one call of a
 * registration over comms), counted against the same per-address limiter; the same errors.
 */
export async function authenticateKey(presented: string | undefined, address: string, store: Store, limiter: FailureLimiter): Promise<ApiKey> {
  const blocked = limiter.blockedFor(address);
  if (blocked > 0) throw rateLimited(address, blocked);
  if (presented === undefined) {
    throw new HttpError('REEF_UNAUTHENTICATED', 'send an API key in the X-Reef-ApiKey header; create one with `reef apikey create`', {
      headers: { [WWW_AUTHENTICATE]: bearerChallenge() },
    });
  }
  let key: ApiKey | null;
  try {
    key = await verifyApiKey(store, presented, apiKeyCacheFor(store), () => {
      const admission = limiter.admit(address);
      if (!admission.admitted) throw rateLimited(address, admission.retryAfterSeconds);
      return admission.slot;
    });
  } catch (err) {
    if (err instanceof HashingBusyError) {
      throw new HttpError('REEF_BUSY', err.message, { headers: { 'retry-after': String(err.retryAfterSeconds) } });
    }
    throw err;
  }
  if (!key) {
    throw new HttpError(
      'REEF_BAD_API_KEY',
      'The API key is not valid: it is unknown, revoked or mistyped. Create a new one with `reef apikey create`.',
      { headers: { [WWW_AUTHENTICATE]: bearerChallenge(true) } },
    );
  }
  return key;
}

/** Who made an API request: a key (scripts, the CLI, tentacles), a portal session, or a join token (registration only). */
export interface Principal {
  key: ApiKey | null;
  session: Session | null;
  joinToken?: JoinToken;
}

/**
 * A join token where a route takes one (registration), refused with 403 anywhere else
 * before it is even looked up, so a token can do nothing but register. Lookups count
 * against the address's failed-attempt budget like API keys.
 */
async function authenticateJoinToken(req: IncomingMessage, store: Store, limiter: FailureLimiter, presented: string, accepted: boolean): Promise<Principal> {
  if (!accepted) {
    throw new HttpError(
      'REEF_JOIN_TOKEN_NOT_ALLOWED',
      `A join token can only register a machine (POST /api/machines, as \`tentacle register-with --token\` does); ${req.method ?? 'GET'} ${(req.url ?? '/').split('?')[0]} needs an API key or a portal session.`,
    );
  }
  return { key: null, session: null, joinToken: await verifyJoinToken(presented, clientAddress(req), store, limiter) };
}

/** The join token `presented` from `address`, counted against that address's failed-attempt budget (REST and comms alike). */
export async function verifyJoinToken(presented: string, address: string, store: Store, limiter: FailureLimiter): Promise<JoinToken> {
  const blocked = limiter.blockedFor(address);
  if (blocked > 0) throw rateLimited(address, blocked);
  const admission = limiter.admit(address);
  if (!admission.admitted) throw rateLimited(address, admission.retryAfterSeconds);
  try {
    const joinToken = await findJoinToken(store, presented);
    admission.slot.succeeded();
    return joinToken;
  } catch (err) {
    if (isReefError(err, 'REEF_JOIN_TOKEN_INVALID')) admission.slot.failed();
    else admission.slot.withdrawn();
    throw err;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * An API key when the request sends one; otherwise the portal's session cookie, which on
 * anything but GET and HEAD must come with the session's CSRF token in X-Reef-Csrf.
 * Session ids are 256 random bits, so a bad cookie is not counted as a guess.
 */
export async function authenticateRequest(req: IncomingMessage, store: Store, limiter: FailureLimiter, acceptsJoinToken = false): Promise<Principal> {
  const presented = presentedKey(req);
  if (presented !== undefined && isJoinTokenFormat(presented)) return authenticateJoinToken(req, store, limiter, presented, acceptsJoinToken);
  const cookie = presented === undefined ? readCookie(req.headers.cookie, SESSION_COOKIE) : undefined;
  if (cookie === undefined) return { key: await authenticate(req, store, limiter), session: null };
  const session = await findSession(store, cookie);
  if (!session) {
    throw new HttpError('REEF_SESSION_EXPIRED', 'Your portal session has ended or is not valid; sign in again at /login.', {
      headers: { [WWW_AUTHENTICATE]: `${SESSION_CHALLENGE}, ${bearerChallenge()}` },
    });
  }
  if (!SAFE_METHODS.has(req.method ?? 'GET')) {
    const header = req.headers[CSRF_HEADER];
    if (!csrfMatches(session, Array.isArray(header) ? header[0] : header)) {
      throw new HttpError(
        'REEF_CSRF_REJECTED',
        `This request changes something but did not carry the session's CSRF token in ${CSRF_HEADER}; reload the page and try again.`,
      );
    }
  }
  return { key: null, session };
}

/** The actor a principal acts as: the key, or the session's user, with role and scope. */
export function actorOf(principal: Principal): Actor {
  if (principal.key) return { kind: 'key', id: principal.key.id, name: principal.key.name, role: principal.key.role, scope: principal.key.scope };
  const session = principal.session!;
  return { kind: 'user', id: session.userId, name: session.username, role: session.role, scope: session.scope };
}

/**
 * Who may read /metrics on the HTTPS port: a key or portal user whose role has
 * `metrics:read` and which is not scoped (the metrics count every machine and task).
 */
export function authorizeMetricsRead(actor: Actor | null): void {
  if (!actor) {
    throw new HttpError('REEF_UNAUTHENTICATED', 'send an API key in the X-Reef-ApiKey header or as Authorization: Bearer; create one with `reef apikey create`', {
      headers: { [WWW_AUTHENTICATE]: bearerChallenge() },
    });
  }
  authorize(actor, 'metrics:read', 'GET /metrics');
}

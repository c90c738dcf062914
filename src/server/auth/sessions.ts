import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Session, Store, User } from '../store/types.js';

/**
 * Portal sessions. The browser holds a random 256-bit id in an HttpOnly cookie; the store
 * holds only its SHA-256, the user, an expiry and a CSRF token. Every state-changing
 * request must send that token back (header or form field), which a page on another site
 * cannot read.
 */

export const SESSION_COOKIE = 'reef_session';
export const CSRF_HEADER = 'x-reef-csrf';
export const CSRF_FIELD = 'csrf';
/** Default session lifetime: a working day. */
export const DEFAULT_SESSION_TTL_MS = 12 * 60 * 60 * 1000;

/** 256 random bits, base64url (43 characters). */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

const TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/;

export function hashSessionId(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

export interface NewSession {
  /** The cookie value: shown to the browser once, never stored. */
  id: string;
  session: Session;
}

export async function startSession(store: Store, user: Pick<User, 'id'> & Partial<User>, options: { ttlMs?: number; now?: number } = {}): Promise<NewSession> {
  const now = options.now ?? Date.now();
  const id = randomToken();
  // Sign-in is a good moment to sweep: no timer needed.
  await store.deleteExpiredSessions(new Date(now));
  const session = await store.insertSession({
    idHash: hashSessionId(id),
    userId: user.id,
    csrfToken: randomToken(),
    expiresAt: new Date(now + (options.ttlMs ?? DEFAULT_SESSION_TTL_MS)),
  });
  return { id, session };
}

/** The live session for a cookie value; null for a malformed, unknown or expired one. */
export async function findSession(store: Store, id: string | undefined, now = Date.now()): Promise<Session | null> {
  if (id === undefined || !TOKEN_FORMAT.test(id)) return null;
  const session = await store.getSession(hashSessionId(id));
  if (!session) return null;
  if (Date.parse(session.expiresAt) <= now) {
    await store.deleteSession(session.idHash);
    return null;
  }
  return session;
}

export async function endSession(store: Store, id: string | undefined): Promise<void> {
  if (id !== undefined && TOKEN_FORMAT.test(id)) await store.deleteSession(hashSessionId(id));
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfMatches(session: Session, presented: string | undefined): boolean {
  if (typeof presented !== 'string' || !TOKEN_FORMAT.test(presented)) return false;
  const a = Buffer.from(session.csrfToken);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Reads one cookie from a Cookie header; undefined when absent. The first occurrence wins. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    return part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
  }
  return undefined;
}

/** Set-Cookie for a session: HttpOnly, Secure, SameSite=Strict, whole site. */
export function sessionCookie(id: string, maxAgeMs: number = DEFAULT_SESSION_TTL_MS): string {
  return `${SESSION_COOKIE}=${id}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=${Math.floor(maxAgeMs / 1000)}`;
}

export function clearedSessionCookie(): string {
  return `${SESSION_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0`;
}

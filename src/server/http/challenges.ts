import { SESSION_COOKIE } from '../auth/sessions.js';

/**
 * What a 401 says about how to authenticate (RFC 9110 11.6.1: a 401 carries
 * WWW-Authenticate with at least one challenge). One realm for the whole HTTPS port.
 *
 * - The REST API takes its key as a bearer token (RFC 6750): `Authorization: Bearer KEY`,
 *   or the same token in X-Reef-ApiKey. A refused key adds `error="invalid_token"`.
 * - The portal's session is a cookie set by its sign-in form. No registered scheme describes
 *   that, so it is named with the "Cookie" scheme of draft-broyer-http-cookie-auth, whose
 *   parameters say where the form is and which cookie it sets.
 */
export const REALM = 'Reef';

export function bearerChallenge(refused = false): string {
  return `Bearer realm="${REALM}"${refused ? ', error="invalid_token"' : ''}`;
}

export const SESSION_CHALLENGE = `Cookie realm="${REALM}", form-action="/login", cookie-name="${SESSION_COOKIE}"`;

export const WWW_AUTHENTICATE = 'www-authenticate';

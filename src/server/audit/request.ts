import type { IncomingMessage } from 'node:http';
import type { ErrorCode } from '../../error-codes.js';
import { isApiKeyFormat } from '../auth/apikeys.js';
import { presentedKey } from '../http/auth.js';
import type { ApiContext } from '../http/context.js';
import { clientAddress } from '../https/client-address.js';
import type { AuditEvent } from '../store/types.js';
import { requestActor } from './actor.js';
import type { AuditLog, AuditRecord } from './log.js';

/**
 * Records a change an API request made: the actor is the request's key or portal user, the
 * address its client's (PROXY protocol aware). The one call routes make.
 */
export function auditRequest(ctx: ApiContext, event: Omit<AuditRecord, 'actor' | 'address'>): Promise<AuditEvent | null> {
  const actor = requestActor(ctx);
  if (!actor) throw new Error(`${event.kind} recorded on a route without credentials`);
  return ctx.deps.audit.record({ ...event, actor, address: clientAddress(ctx.req) });
}

/**
 * Records a request refused for its API key (unknown, revoked, mistyped). The actor is the
 * key's public prefix when what was sent looks like a key at all: anything else (a password
 * pasted by mistake) is not copied into the log.
 */
export function auditRefusedKey(audit: AuditLog, req: IncomingMessage): Promise<AuditEvent | null> {
  const presented = presentedKey(req) ?? '';
  const prefix = isApiKeyFormat(presented) ? presented.slice(4, 12) : null;
  return audit.record({
    actor: { kind: 'api-key', id: null, name: prefix === null ? null : `API-${prefix}…` },
    kind: 'apikey.refused',
    details: { prefix, method: req.method ?? 'GET', path: (req.url ?? '').split('?')[0]! },
    address: clientAddress(req),
  });
}

/** The refusals of a join token, each recorded as token.refused. */
export const JOIN_TOKEN_REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'REEF_JOIN_TOKEN_EXPIRED',
  'REEF_JOIN_TOKEN_INVALID',
  'REEF_JOIN_TOKEN_NOT_ALLOWED',
  'REEF_JOIN_TOKEN_OUT_OF_SCOPE',
  'REEF_JOIN_TOKEN_REVOKED',
  'REEF_JOIN_TOKEN_USED_UP',
]);

/**
 * Records a refused join token: which refusal (its error code) and, when the token was found
 * before it was refused (out of scope), its id. The token itself is never recorded.
 */
export function auditRefusedToken(audit: AuditLog, req: IncomingMessage, code: string, tokenId: string | undefined): Promise<AuditEvent | null> {
  return audit.record({
    actor: { kind: 'join-token', id: tokenId ?? null, name: null },
    kind: 'token.refused',
    details: { code, method: req.method ?? 'GET', path: (req.url ?? '').split('?')[0]! },
    address: clientAddress(req),
  });
}

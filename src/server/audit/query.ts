import type { AuditQuery } from '../../api/contract.js';
import { ReefError } from '../../errors.js';
import type { AuditFilter } from '../store/types.js';
import { AUDIT_FAMILIES, isAuditKind } from './kinds.js';

/**
 * The store filter of an audit query (GET /api/audit, the portal's audit page): `kind` is a
 * kind of the catalogue or a family of them; anything else is refused with the list, so a
 * typo does not look like an empty log.
 */
export function auditFilterOf(query: AuditQuery): AuditFilter {
  const filter: AuditFilter = { actor: query.actor, since: query.since, until: query.until, before: query.before, limit: query.limit };
  if (query.kind !== undefined) {
    if (isAuditKind(query.kind)) filter.kind = query.kind;
    else if (AUDIT_FAMILIES.includes(query.kind)) filter.family = query.kind;
    else {
      throw new ReefError('REEF_INVALID_ARGUMENT', `"${query.kind}" is neither an audit event kind nor a family of them; the families are ${AUDIT_FAMILIES.join(', ')} (docs/security.md lists the kinds).`);
    }
  }
  return filter;
}

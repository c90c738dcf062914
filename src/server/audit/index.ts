export { ACTOR_KINDS, apiKeyActor, joinTokenActor, requestActor, systemActor, userActor, type Actor, type ActorKind } from './actor.js';
export { AUDIT_FAMILIES, AUDIT_KIND_NAMES, AUDIT_KINDS, isAuditKind, type AuditKind } from './kinds.js';
export { AuditLog, type AuditRecord } from './log.js';
export { auditRefusedKey, auditRefusedToken, auditRequest } from './request.js';

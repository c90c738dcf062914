/**
 * Every kind of audit event, declared once: what it records and what its target is. The
 * store takes any well-formed kind; AuditLog.record takes only these (a typo does not
 * compile), GET /api/audit's `kind` filter accepts these or a family (the part before the
 * dot), and docs/security.md lists them (test/server/audit/audit.test.ts checks it does).
 *
 * Adding one: a line below, then `audit.record({ actor, kind, target, details, address })`
 * where the change is made (see log.ts), then its row in docs/security.md.

 */

export interface AuditKindInfo {
  /** What happened, in one sentence. */
  readonly meaning: string;
  /** The kind of its target, or null when it has none. */
  readonly target: string | null;
}

export const AUDIT_KINDS = {
  'apikey.created': { meaning: 'An API key was created (over the API, the portal, offline with `reef apikey create --data`, or at first start).', target: 'api-key' },
  'apikey.refused': { meaning: 'A request came with an API key that is unknown, revoked or mistyped (details: the prefix it carried).', target: null },
  'apikey.revoked': { meaning: 'An API key was revoked.', target: 'api-key' },
  'environment.created': { meaning: 'An environment was created over the API (one a registration names is created with the machine: see machine.registered).', target: 'environment' },
  'environment.deleted': { meaning: 'An environment was deleted.', target: 'environment' },
  'file.deleted': { meaning: 'An uploaded file was deleted over the API (not by retention).', target: 'file' },
  'file.uploaded': { meaning: 'A file was uploaded for push-file tasks (target: its SHA-256; details: its size).', target: 'file' },
  'machine.certificate-rotated': { meaning: "A Tentacle connected with the new certificate of its rotation: that is now the machine's thumbprint, and the old one is revoked (details: old and new thumbprints).", target: 'machine' },
  'machine.deregistered': { meaning: 'A machine was deleted (removed in the portal, `reef machines delete`, or `tentacle deregister-from`); its certificate is no longer trusted.', target: 'machine' },
  'machine.registered': { meaning: 'A machine was registered (details: kind, thumbprint, environments, roles or pools, and whether `force` updated an existing one).', target: 'machine' },
  'machine.trust-changed': { meaning: "A registration with `force` replaced a machine's certificate: the old thumbprint is no longer trusted, the new one is (both in details).", target: 'machine' },
  'machine.server-certificate-dropped': { meaning: 'During a server certificate rotation, a Tentacle confirmed it no longer trusts the old server certificate (details: its thumbprint, the rotation).', target: 'machine' },
  'machine.server-certificate-trusted': { meaning: 'During a server certificate rotation, a Tentacle confirmed it trusts the new server certificate (details: its thumbprint, the rotation).', target: 'machine' },
  'server.certificate-rotation-completed': { meaning: 'A server certificate rotation was completed: every node presents the new certificate (details: the rotation, the new thumbprint).', target: null },
  'server.certificate-rotation-started': { meaning: 'A server certificate rotation was started (details: the rotation, old and new thumbprints, grace period).', target: null },
  'server.https-certificate-reloaded': { meaning: 'The portal\'s CA-issued certificate was reloaded at run time (SIGHUP or a file change; details: old and new thumbprints).', target: null },
  'task.cancelled': { meaning: 'Cancellation of an unfinished task was requested.', target: 'task' },
  'task.created': { meaning: 'A task was created (details: kind, target, number of machines; never the script body).', target: 'task' },
  'token.created': { meaning: 'A join token was created (details: scope, uses, expiry; never the token).', target: 'join-token' },
  'token.refused': { meaning: 'A join token was refused: unknown, expired, used up, revoked, out of its scope, or sent to a route other than registration (details: the error code; the actor is the token when it was found).', target: null },
  'token.revoked': { meaning: 'A join token was revoked.', target: 'join-token' },
  'token.used': { meaning: 'A join token registered a machine (the actor is the token; details: uses left).', target: 'machine' },
  'user.created': { meaning: 'A portal user was created: `admin` at first start, others by an admin (details: role and scope).', target: 'user' },
  'user.disabled': { meaning: 'A portal user was disabled; their sessions end.', target: 'user' },
  'user.enabled': { meaning: 'A disabled portal user was enabled again.', target: 'user' },
  'user.password-changed': { meaning: 'A portal user changed their own password.', target: 'user' },
  'user.password-reset': { meaning: "An admin, or `reef user reset-password` offline, reset a user's password.", target: 'user' },
  'user.role-changed': { meaning: "A user's or API key's role or scope changed (details: before and after).", target: 'user' },
  'user.sign-in-failed': { meaning: 'A portal sign-in failed: unknown user or wrong password (the actor is the username as typed).', target: null },
  'user.signed-in': { meaning: 'A portal user signed in.', target: null },
  'user.signed-out': { meaning: 'A portal user signed out.', target: null },
  'worker-pool.created': { meaning: 'A worker pool was created explicitly.', target: 'worker-pool' },
  'worker-pool.deleted': { meaning: 'A worker pool was deleted.', target: 'worker-pool' },
} as const satisfies Record<string, AuditKindInfo>;

export type AuditKind = keyof typeof AUDIT_KINDS;

export const AUDIT_KIND_NAMES = Object.keys(AUDIT_KINDS) as AuditKind[];

/** `task` for task.created...: what the `kind` filter also accepts. */
export const AUDIT_FAMILIES: readonly string[] = [...new Set(AUDIT_KIND_NAMES.map((kind) => kind.split('.')[0]!))];

export function isAuditKind(value: string): value is AuditKind {
  return Object.hasOwn(AUDIT_KINDS, value);
}

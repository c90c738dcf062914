import { describeScope, isScoped, ROLES, type Role, type Scope } from '../../api/roles.js';
import { HttpError } from '../http/errors.js';

export { ROLES, type Role, type Scope } from '../../api/roles.js';

/**
 * The permission model: what each role may do, in one table. Every REST route, the
 * metrics endpoint and every portal page declares the one permission it needs; the shared
 * request path (http/handler.ts, portal/handler.ts) checks it before the handler runs, on
 * every node alike. Scopes (environments, worker pools) narrow what a permitted actor sees
 * and touches; src/server/auth/scope.ts applies them.
 */

/** Each permission, and what it lets one do, in words for refusals. */
export const PERMISSIONS = {
  'server:read': "read the server's description (version, comms certificate)",
  'nodes:read': 'see the server nodes',
  'metrics:read': 'read the metrics',
  'machines:read': 'see machines and their health',
  'machines:register': 'register machines',
  'machines:deregister': 'deregister (delete) machines',
  'groups:read': 'see environments and worker pools',
  'groups:write': 'create and delete environments and worker pools',
  'tasks:read': 'see tasks',
  'tasks:write': 'create and cancel tasks',
  'logs:read': 'read task logs',
  'files:read': 'look up uploaded files',
  'files:upload': 'upload files',
  'files:delete': 'delete uploaded files',
  'apikeys:manage': 'list, create and revoke API keys',
  'tokens:manage': 'create, list and revoke join tokens (and the Add machine page)',
  'users:manage': 'create, disable and reset the passwords of portal users',
  'audit:read': 'read the audit log',
  'server:certificate': 'rotate the server certificate, and see the rotation',
  'machines:certificate': "rotate Tentacles' certificates (a rotate-machine-certificate task)",
  'account:self': 'change their own password',
} as const;
export type Permission = keyof typeof PERMISSIONS;

const READ: readonly Permission[] = ['server:read', 'nodes:read', 'metrics:read', 'machines:read', 'groups:read', 'tasks:read', 'logs:read', 'files:read', 'account:self'];

/** What each role may do. admin may do everything. */
export const ROLE_PERMISSIONS: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  admin: new Set(Object.keys(PERMISSIONS) as Permission[]),
  operator: new Set([...READ, 'tasks:write', 'files:upload']),
  viewer: new Set(READ),
  // What `tentacle register-with`, `register-worker` and `deregister-from` need, nothing more.
  registrar: new Set(['server:read', 'machines:register', 'machines:deregister', 'tokens:manage', 'account:self']),
};

/** What each role is for, in words, as the issue of roles puts it (for pages and help). */
export const ROLE_SUMMARIES: Readonly<Record<Role, string>> = {
  admin: 'do everything',
  operator: 'create and cancel tasks, and read machines and logs',
  viewer: 'read machines, tasks and logs, and change nothing',
  registrar: 'only register and deregister machines',
};

/**
 * Permissions about the whole server, which a scoped actor never has: they show or change
 * things no scope can narrow (every node, server-wide metrics, groups, keys, users). Join
 * tokens are listed here too: a token's own scope is checked against nothing yet, so a
 * scoped registrar could otherwise mint a token for any environment.
 */
export const WHOLE_SERVER_PERMISSIONS: ReadonlySet<Permission> = new Set(['nodes:read', 'metrics:read', 'groups:write', 'files:delete', 'apikeys:manage', 'tokens:manage', 'users:manage', 'audit:read', 'server:certificate', 'machines:certificate']);

/** Who is asking: an API key or a signed-in portal user, with its role and scope. */
export interface Actor {
  kind: 'key' | 'user';
  id: string;
  name: string;
  role: Role;
  scope: Scope;
}

/** `API key "ci" (role viewer)`, for refusals and logs. */
export function describeActor(actor: Actor): string {
  return `${actor.kind === 'key' ? 'API key' : 'User'} "${actor.name}" (role ${actor.role}${isScoped(actor.scope) ? `, limited to ${describeScope(actor.scope)}` : ''})`;
}

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** true when the actor's role has the permission and, for a whole-server one, the actor is not scoped. */
export function can(actor: Actor, permission: Permission): boolean {
  if (!ROLE_PERMISSIONS[actor.role].has(permission)) return false;
  return !(WHOLE_SERVER_PERMISSIONS.has(permission) && isScoped(actor.scope));
}

/** The roles that have a permission, admin first. */
export function rolesAllowing(permission: Permission): Role[] {
  return ROLES.filter((role) => ROLE_PERMISSIONS[role].has(permission));
}

/** `details` of a 403 REEF_FORBIDDEN. */
export interface Forbidden {
  attempted: string;
  permission: Permission;
  role: Role;
  scope: Scope;
  allowedRoles: Role[];
  /** true when the role has the permission but a scoped actor cannot (it covers the whole server). */
  needsWholeServer: boolean;
}

/**
 * Throws 403 REEF_FORBIDDEN unless the actor may. `attempted` says what was tried, e.g.
 * `POST /api/tasks` or `the API keys page`; the message names it, the permission in words
 * and the roles that would allow it.
 */
export function authorize(actor: Actor, permission: Permission, attempted: string): void {
  if (can(actor, permission)) return;
  const allowedRoles = rolesAllowing(permission);
  const needsWholeServer = ROLE_PERMISSIONS[actor.role].has(permission);
  const what = PERMISSIONS[permission];
  const message = needsWholeServer
    ? `${describeActor(actor)} may not ${what} (${attempted}): that covers the whole server, so it needs a key or user that is not limited to environments or worker pools, with role ${allowedRoles.join(' or ')}.`
    : `${describeActor(actor)} may not ${what} (${attempted}). Roles that may: ${allowedRoles.join(', ')}.`;
  const details: Forbidden = { attempted, permission, role: actor.role, scope: actor.scope, allowedRoles, needsWholeServer };
  throw new HttpError('REEF_FORBIDDEN', message, { details });
}

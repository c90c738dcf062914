/**
 * The roles a key or portal user can have, shared by the server, the CLI and the contract.
 * What each may do is decided in one place: src/server/auth/roles.ts.
 */
export const ROLES = ['admin', 'operator', 'viewer', 'registrar'] as const;
export type Role = (typeof ROLES)[number];

/**
 * The environments and worker pools a key or user is limited to. Both empty: the whole
 * server. Names compare case-insensitively, as everywhere else.
 */
export interface Scope {
  environments: string[];
  workerPools: string[];
}

export const WHOLE_SERVER: Scope = Object.freeze({ environments: [], workerPools: [] }) as Scope;

export function isScoped(scope: Scope): boolean {
  return scope.environments.length > 0 || scope.workerPools.length > 0;
}

/** "environments Test, Staging and worker pools Builders", for messages and listings. */
export function describeScope(scope: Scope): string {
  if (!isScoped(scope)) return 'the whole server';
  const parts: string[] = [];
  if (scope.environments.length) parts.push(`${scope.environments.length === 1 ? 'environment' : 'environments'} ${scope.environments.join(', ')}`);
  if (scope.workerPools.length) parts.push(`${scope.workerPools.length === 1 ? 'worker pool' : 'worker pools'} ${scope.workerPools.join(', ')}`);
  return parts.join(' and ');
}

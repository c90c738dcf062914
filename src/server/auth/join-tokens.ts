import { ReefError } from '../../errors.js';
import { randomBase32 } from '../store/ids.js';
import { checkName, invalid } from '../store/input.js';
import { fold } from '../store/rows.js';
import type { JoinToken, JoinTokenScope, MachineKind, Store } from '../store/types.js';
import { storedSecretHash } from './secret-hash.js';

/**
 * Join tokens: what a new machine registers with instead of an API key. A token is
 * `RJT-` + 32 base32 characters (160 random bits), shown once and stored only as its
 * SHA-256 (secret-hash.ts). It names a scope (a kind and the environments and roles, or the
 * worker pools, the machine may have), a number of uses and an expiry (default one hour, at
 * most 30 days), and can do one thing: POST /api/machines inside that scope. Every other
 * route refuses it (http/auth.ts), so a token copied from an install script cannot list,
 * run or read anything, and stops working after its uses or its hour.
 */

const TOKEN_FORMAT = /^RJT-[A-Z2-7]{32}$/;
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 3600;
export const MAX_TOKEN_LIFETIME_SECONDS = 30 * 24 * 3600;
export const MIN_TOKEN_LIFETIME_SECONDS = 60;
export const MAX_TOKEN_USES = 10_000;
/** Where an administrator gets a new token, for every refusal message. */
const GET_A_NEW_ONE = 'Ask an administrator for a new join token (`reef tokens create`, or the portal\'s Add machine page).';

export function isJoinTokenFormat(presented: string): boolean {
  return TOKEN_FORMAT.test(presented);
}

export type JoinTokenState = 'active' | 'revoked' | 'used-up' | 'expired';

/** Revoked first, then used up, then expired: the reason that no new token would change is named last. */
export function joinTokenState(token: JoinToken, now = new Date()): JoinTokenState {
  if (token.revokedAt !== null) return 'revoked';
  if (token.usesLeft <= 0) return 'used-up';
  if (Date.parse(token.expiresAt) <= now.getTime()) return 'expired';
  return 'active';
}

export interface JoinTokenRequest {
  environments?: string[];
  roles?: string[];
  workerPools?: string[];
  uses?: number;
  lifetimeSeconds?: number;
  /** Who makes it, as `reef tokens list` shows it. */
  createdBy: string;
}

export interface CreatedJoinToken {
  /** The secret: print it once, then forget it. */
  token: string;
  joinToken: JoinToken;
}

function names(what: string, list: string[] | undefined): string[] {
  const seen = new Map<string, string>();
  for (const n of list ?? []) {
    const checked = checkName(what, n);
    if (!seen.has(fold(checked))) seen.set(fold(checked), checked);
  }
  return [...seen.values()];
}

/** A scope a machine can be registered into: a target's environments and roles, or a worker's pools. */
export function checkScope(request: Pick<JoinTokenRequest, 'environments' | 'roles' | 'workerPools'>): JoinTokenScope {
  const environments = names('Environment name', request.environments);
  const roles = names('Role', request.roles);
  const workerPools = names('Worker pool name', request.workerPools);
  if (workerPools.length > 0) {
    if (environments.length > 0 || roles.length > 0) {
      throw invalid('A join token is for deployment targets (environments and roles) or for workers (worker pools), not both.');
    }
    return { kind: 'worker', environments, roles, workerPools };
  }
  if (environments.length === 0 || roles.length === 0) {
    throw invalid('A join token for deployment targets needs at least one environment and one role (or give worker pools for workers).');
  }
  return { kind: 'target', environments, roles, workerPools };
}

export async function createJoinToken(store: Store, request: JoinTokenRequest): Promise<CreatedJoinToken> {
  const scope = checkScope(request);
  const uses = request.uses ?? 1;
  if (!Number.isInteger(uses) || uses < 1 || uses > MAX_TOKEN_USES) throw invalid(`A join token allows 1 to ${MAX_TOKEN_USES} uses, not ${uses}.`);
  const lifetime = request.lifetimeSeconds ?? DEFAULT_TOKEN_LIFETIME_SECONDS;
  if (!Number.isInteger(lifetime) || lifetime < MIN_TOKEN_LIFETIME_SECONDS || lifetime > MAX_TOKEN_LIFETIME_SECONDS) {
    throw invalid(`A join token lives from ${MIN_TOKEN_LIFETIME_SECONDS} seconds to 30 days (${MAX_TOKEN_LIFETIME_SECONDS} s), not ${lifetime} s.`);
  }
  const token = `RJT-${randomBase32(32)}`;
  const joinToken = await store.insertJoinToken({
    hash: storedSecretHash(token),
    scope,
    uses,
    createdBy: request.createdBy,
    expiresAt: new Date(Date.now() + lifetime * 1000),
  });
  return { token, joinToken };
}

/** The refusal for a token that exists but cannot be used, saying which of the three and what to do. */
function unusable(token: JoinToken, state: Exclude<JoinTokenState, 'active'>): ReefError {
  switch (state) {
    case 'revoked':
      return new ReefError('REEF_JOIN_TOKEN_REVOKED', `This join token (${token.id}) was revoked at ${token.revokedAt}. ${GET_A_NEW_ONE}`);
    case 'used-up':
      return new ReefError(
        'REEF_JOIN_TOKEN_USED_UP',
        `This join token (${token.id}) has been used for all ${token.uses} registration${token.uses === 1 ? '' : 's'} it allowed. ${GET_A_NEW_ONE}`,
      );
    case 'expired':
      return new ReefError('REEF_JOIN_TOKEN_EXPIRED', `This join token (${token.id}) expired at ${token.expiresAt}. ${GET_A_NEW_ONE}`);
  }
}

const UNKNOWN = `The join token is not valid: it is unknown or mistyped. ${GET_A_NEW_ONE}`;

/** The usable token `presented` is, or the refusal that says why not. Reads; takes no use. */
export async function findJoinToken(store: Store, presented: string): Promise<JoinToken> {
  if (!isJoinTokenFormat(presented)) throw new ReefError('REEF_JOIN_TOKEN_INVALID', UNKNOWN);
  const token = await store.getJoinTokenByHash(storedSecretHash(presented));
  if (!token) throw new ReefError('REEF_JOIN_TOKEN_INVALID', UNKNOWN);
  const state = joinTokenState(token);
  if (state !== 'active') throw unusable(token, state);
  return token;
}

/**
 * Takes one use of the token, atomically across nodes; when there was none to take (a
 * racing registration had the last, or it was revoked or expired meanwhile) the refusal says
 * which.
 */
export async function useJoinToken(store: Store, found: JoinToken): Promise<JoinToken> {
  const now = new Date();
  const taken = await store.consumeJoinToken(found.id, now);
  if (taken) return taken;
  const token = (await store.getJoinToken(found.id)) ?? found;
  const state = joinTokenState(token, now);
  throw unusable(token, state === 'active' ? 'used-up' : state);
}

export interface RequestedMembership {
  kind: MachineKind;
  environments?: string[] | undefined;
  roles?: string[] | undefined;
  workerPools?: string[] | undefined;
  force?: boolean | undefined;
}

/**
 * The memberships a registration with this token gets: what it asked for when all of that is
 * inside the token's scope, the token's whole scope when it asked for nothing.
 * REEF_JOIN_TOKEN_OUT_OF_SCOPE names what is outside.
 */
export function membershipsWithin(token: JoinToken, request: RequestedMembership): Pick<JoinTokenScope, 'environments' | 'roles' | 'workerPools'> {
  const { scope } = token;
  const refuse = (what: string) =>
    new ReefError('REEF_JOIN_TOKEN_OUT_OF_SCOPE', `This join token (${token.id}) ${what}; it registers ${describeScope(scope)} only.`);
  if (request.force) throw refuse('cannot replace an existing registration (--force needs an API key)');
  if (request.kind !== scope.kind) throw refuse(`cannot register a ${request.kind === 'worker' ? 'worker' : 'deployment target'}`);
  const pick = (what: string, asked: string[] | undefined, allowed: string[]) => {
    if (!asked || asked.length === 0) return allowed;
    const allowedFolded = new Set(allowed.map(fold));
    const outside = asked.filter((name) => !allowedFolded.has(fold(name.trim())));
    if (outside.length > 0) throw refuse(`does not cover ${what} ${outside.map((n) => `"${n}"`).join(', ')}`);
    return asked;
  };
  if (scope.kind === 'worker') {
    if ((request.environments?.length ?? 0) > 0 || (request.roles?.length ?? 0) > 0) throw refuse('cannot give a worker environments or roles');
    return { environments: [], roles: [], workerPools: pick('worker pool', request.workerPools, scope.workerPools) };
  }
  if ((request.workerPools?.length ?? 0) > 0) throw refuse('cannot put a deployment target in worker pools');
  return {
    environments: pick('environment', request.environments, scope.environments),
    roles: pick('role', request.roles, scope.roles),
    workerPools: [],
  };
}

/** `deployment targets in Production with role web`, for messages and listings. */
export function describeScope(scope: JoinTokenScope): string {
  if (scope.kind === 'worker') return `workers in worker pool${scope.workerPools.length === 1 ? '' : 's'} ${scope.workerPools.join(', ')}`;
  return `deployment targets in ${scope.environments.join(', ')} with role${scope.roles.length === 1 ? '' : 's'} ${scope.roles.join(', ')}`;
}

/** Revokes the token at once (every node reads the row on each use). false if missing or already revoked. */
export async function revokeJoinToken(store: Store, id: string): Promise<boolean> {
  return store.revokeJoinToken(id);
}

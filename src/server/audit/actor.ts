/**
 * Who did something, as the audit log and the request budgets name them: a kind, an id
 * and a name (kept as they were at the time: a key renamed or a user deleted later does not
 * rewrite history).
 */
import type { ApiKey, AuditActor, JoinToken } from '../store/types.js';

export const ACTOR_KINDS = {
  user: 'A person signed in to the portal; for a failed sign-in, the username as typed, with no id.',
  'api-key': 'An API key: scripts, the reef command line, tentacle register-with --apiKey.',
  'join-token': 'A join token registering a machine (tentacle register-with --token).',
  machine: 'A registered Tentacle, by its certificate.',
  system: 'The server itself (first start, a certificate reload) or a command run on its data directory (reef apikey create --data).',
} as const;

export type ActorKind = keyof typeof ACTOR_KINDS;

export interface Actor extends AuditActor {
  kind: ActorKind;
}

export function apiKeyActor(key: Pick<ApiKey, 'id' | 'name'>): Actor {
  return { kind: 'api-key', id: key.id, name: key.name };
}

export function userActor(user: { id: string; username: string }): Actor {
  return { kind: 'user', id: user.id, name: user.username };
}

/** The server acting on its own: `what` says which part (e.g. `first start`). */
export function systemActor(what: string): Actor {
  return { kind: 'system', id: null, name: what };
}

/** A join token has no name: its id (`tok-...`) names it, and its scope is in `reef tokens list`. */
export function joinTokenActor(token: Pick<JoinToken, 'id'>): Actor {
  return { kind: 'join-token', id: token.id, name: null };
}

/** The actor of an authenticated API request: its key, its portal user or its join token. null only on public routes. */
export function requestActor(principal: {
  key: Pick<ApiKey, 'id' | 'name'> | null;
  user?: { id: string; username: string };
  joinToken?: Pick<JoinToken, 'id'>;
}): Actor | null {
  if (principal.key) return apiKeyActor(principal.key);
  if (principal.user) return userActor(principal.user);
  if (principal.joinToken) return joinTokenActor(principal.joinToken);
  return null;
}

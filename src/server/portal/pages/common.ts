import { can, type Actor } from '../../auth/roles.js';
import type { Session } from '../../store/types.js';
import type { PageContext } from '../context.js';
import type { SignedIn } from '../layout.js';

/** The user a session belongs to, as the permission model sees them. */
export function sessionActor(session: Session): Actor {
  return { kind: 'user', id: session.userId, name: session.username, role: session.role, scope: session.scope };
}

export function signedInAs(session: Session, actor: Actor): SignedIn {
  return { username: session.username, role: actor.role, csrfToken: session.csrfToken, can: (permission) => can(actor, permission) };
}

export function signedIn(ctx: PageContext): SignedIn {
  return signedInAs(ctx.session, ctx.actor);
}

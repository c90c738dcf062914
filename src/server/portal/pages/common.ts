import type { PageContext } from '../context.js';
import type { SignedIn } from '../layout.js';

export function signedIn(ctx: PageContext): SignedIn {
  return { username: ctx.session.username, csrfToken: ctx.session.csrfToken };
}

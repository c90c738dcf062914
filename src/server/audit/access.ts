import type { ApiContext } from '../http/context.js';
import { HttpError } from '../http/errors.js';
import { requestActor } from './actor.js';

/**
 * Who may read the audit log: administrators only. Every API key and portal user is an
 * administrator until roles land (issue 16), so today this asks for credentials; that work
 * requires the `admin` role here, and the portal's audit page asks the same question.
 */
export function authorizeAuditRead(principal: Pick<ApiContext, 'key' | 'user'>): void {
  // Join tokens never reach this route (they are refused on every route but registration).
  if (!requestActor({ key: principal.key, user: principal.user })) throw new HttpError('REEF_UNAUTHENTICATED', 'Reading the audit log needs an administrator\'s API key or portal session.');
}

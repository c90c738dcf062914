import { RegisterOverCommsArgs } from '../../api/comms-registration.js';
import type { RegistrationHandler } from '../../comms/index.js';
import { sourceAddress } from '../../comms/index.js';
import { ReefError } from '../../errors.js';
import { normalizeThumbprint } from '../../pki/thumbprint.js';
import type { FailureLimiter } from '../auth/failure-limiter.js';
import { isJoinTokenFormat } from '../auth/join-tokens.js';
import { authorize } from '../auth/roles.js';
import type { ApiKey, JoinToken } from '../store/types.js';
import { apiKeyActor, joinTokenActor } from '../audit/actor.js';
import type { AuditLog } from '../audit/log.js';
import { actorOf, authenticateKey, verifyJoinToken } from './auth.js';
import type { ApiDeps } from './context.js';
import { registerMachine, type Registrar } from './routes/machines.js';
import { parseWith } from './validation.js';

/**
 * Answers a registration over comms (src/comms/registration-session.ts) exactly as POST
 * /api/machines would: the same key checks against the same per-address limiter (the
 * source address is the carrier's, as the REST API sees the proxy's when one is in front),
 * the same validation, the same registration code, the same error codes. Besides, the
 * Tentacle may register only the certificate it dialled with.
 */
export function createCommsRegistration(deps: Pick<ApiDeps, 'store' | 'comms' | 'info' | 'engine' | 'logger'> & { audit: AuditLog }, limiter: FailureLimiter): RegistrationHandler {
  return async (args, peer) => {
    // As on REST, the key is checked before the request is looked at.
    const presented = typeof (args as { apiKey?: unknown } | null)?.apiKey === 'string' ? (args as { apiKey: string }).apiKey.trim() || undefined : undefined;
    const address = sourceAddress(peer.remoteAddress);
    // A join token travels where the API key does, as on REST; it then bounds what is registered.
    const registrar: Registrar =
      presented !== undefined && isJoinTokenFormat(presented)
        ? tokenRegistrar(await verifyJoinToken(presented, address, deps.store, limiter), address)
        : keyRegistrar(await authenticateKey(presented, address, deps.store, limiter), address);
    const { request } = parseWith(RegisterOverCommsArgs, args, 'registration');
    if (normalizeThumbprint(request.thumbprint) !== peer.thumbprint) {
      throw new ReefError(
        'REEF_INVALID_REQUEST',
        `A Tentacle registers over comms the certificate it connects with (${peer.thumbprint}), not ${normalizeThumbprint(request.thumbprint)}.`,
      );
    }
    return registerMachine(deps, request, deps.logger, registrar, 'comms');
  };
}

/** A key registers as on REST: only if its role may register, and only into its scope. */
function keyRegistrar(key: ApiKey, address: string): Registrar {
  const actor = actorOf({ key, session: null });
  authorize(actor, 'machines:register', 'registration over comms');
  return { actor, apiKeyId: key.id, auditActor: apiKeyActor(key), address };
}

function tokenRegistrar(joinToken: JoinToken, address: string): Registrar {
  return { joinToken, auditActor: joinTokenActor(joinToken), address };
}

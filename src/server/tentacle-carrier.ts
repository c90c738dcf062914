import type { RpcClient } from '../comms/index.js';
import { errorMessage, isReefError } from '../errors.js';
import type { Logger } from '../logging.js';
import { callTentacle, connectionEndpoint } from './tentacle-client.js';

/**
 * Only the Tentacle knows whether it reached the server through an HTTP proxy: asks it
 * (health.ping on this connection) and marks the connection's carrier "+proxy" when it did.
 * Resolves with whether the carrier changed; never rejects, whatever the Tentacle answers.
 */
export async function learnProxyCarrier(client: RpcClient, logger: Logger): Promise<boolean> {
  try {
    const pong = await callTentacle(connectionEndpoint(client), 'health.ping', {}, { deadlineMs: 30_000 });
    if (!pong.carrier.endsWith('+proxy') || client.peer.carrier.endsWith('+proxy')) return false;
    client.peer.carrier += '+proxy';
    return true;
  } catch (err) {
    // A link that fails this early is logged by comms; a bad answer is the Tentacle's fault, logged here.
    if (isReefError(err, 'REEF_PROTOCOL_ERROR')) logger.warn({ thumbprint: client.peer.thumbprint, err: errorMessage(err) }, 'tentacle: invalid ping answer ignored');
    return false;
  }
}

import type { IncomingMessage } from 'node:http';
import { remoteEndpointOf } from '../../comms/index.js';

/**
 * The address of the client behind a portal or API request: the one the PROXY protocol
 * header announced when HAProxy or nginx sit in front (`--proxy-protocol`), else the
 * socket's peer; `::ffff:10.0.0.1` and `10.0.0.1` are one client. Failure limits, request
 * limits and the audit log all key on this, so clients behind one proxy are told apart.
 */
export function clientAddress(req: IncomingMessage): string {
  return remoteEndpointOf(req.socket)?.address ?? 'unknown';
}

import { silentLogger, type Logger } from '../logging.js';
import type { CertificateIdentity } from '../pki/certificate.js';
import type { Thumbprint } from '../pki/thumbprint.js';
import { dialSecure } from './dialer.js';
import { resolveLimits, type CommsLimits } from './limits.js';
import { REGISTER_METHOD } from './registration-session.js';
import { RpcClient } from './rpc/client.js';
import type { PollTarget } from './tentacle.js';

export interface RegistrationDial {
  /** The Tentacle's own certificate: the one it registers, presented in the inner TLS. */
  identity: CertificateIdentity;
  /** Where and how to reach the server: the carrier the Tentacle will poll on. */
  target: Omit<PollTarget, 'trusted'>;
  /** The server's comms thumbprint, pinned in the inner TLS before anything is sent. */
  pinned: Thumbprint;
  /** What to tell the operator when the inner TLS shows another certificate. */
  explainMismatch(presented: Thumbprint): string;
  limits?: Partial<CommsLimits>;
  logger?: Logger;
}

/**
 * Dials the server on a comms carrier and makes the one registration call on a
 * registration-only session (registration-session.ts), the Tentacle being the HTTP/2
 * client. The arguments (credentials included) travel only inside the inner, mutual TLS
 * pinned to the server's thumbprint, so a proxy that terminates the carrier's outer TLS
 * (nginx in front of the portal) relays ciphertext and never sees them.
 */
export async function registerOverComms(dial: RegistrationDial, args: unknown): Promise<unknown> {
  const limits = resolveLimits(dial.limits);
  const logger = dial.logger ?? silentLogger;
  const { socket, peer } = await dialSecure({
    identity: dial.identity,
    host: dial.target.host,
    port: dial.target.port,
    servername: dial.target.servername,
    transport: dial.target.transport,
    expected: [dial.pinned],
    carrier: dial.target.carrier,
    handshakeTimeoutMs: limits.handshakeTimeoutMs,
    explainMismatch: dial.explainMismatch,
    registering: true,
  });
  const client = new RpcClient(socket, peer, limits, logger);
  try {
    return await client.call(REGISTER_METHOD, args, { deadlineMs: limits.registrationTimeoutMs });
  } finally {
    client.close();
  }
}

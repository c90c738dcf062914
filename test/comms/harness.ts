import { once } from 'node:events';
import { generateCertificate, type CertificateIdentity } from '../../src/pki/certificate.js';
import { CommsServer, TentacleComms, type CommsLimits, type Handler, type PollTarget } from '../../src/comms/index.js';
import type { Thumbprint } from '../../src/pki/thumbprint.js';

let identities: Promise<{ server: CertificateIdentity; tentacle: CertificateIdentity; stranger: CertificateIdentity }> | undefined;

/** Certificates shared by a test file: one server, one tentacle, one that nobody trusts. */
export function testIdentities() {
  identities ??= Promise.all([generateCertificate('Reef Server'), generateCertificate('Tentacle'), generateCertificate('Stranger')]).then(
    ([server, tentacle, stranger]) => ({ server, tentacle, stranger }),
  );
  return identities;
}

export function services(table: Record<string, Handler>): ReadonlyMap<string, Handler> {
  return new Map(Object.entries(table));
}

/** A server on port 0 trusting the given thumbprints (a mutable set, so tests can revoke). */
export async function startServer(trusted: Set<Thumbprint>, limits: Partial<CommsLimits> = {}, port = 0) {
  const { server: identity } = await testIdentities();
  const server = new CommsServer({ identity, trust: (tp) => trusted.has(tp), limits });
  const boundPort = await server.listen(port, '127.0.0.1');
  return { server, port: boundPort };
}

export async function startPollingTentacle(
  port: number,
  table: Record<string, Handler>,
  options: { identity?: CertificateIdentity; trusted?: Thumbprint[]; limits?: Partial<CommsLimits>; target?: Partial<PollTarget> } = {},
) {
  const ids = await testIdentities();
  const comms = new TentacleComms({ identity: options.identity ?? ids.tentacle, services: services(table), limits: options.limits });
  const trusted = options.trusted ?? [ids.server.thumbprint];
  const poller = comms.poll({ host: '127.0.0.1', port, carrier: 'tcp', trusted: () => trusted, ...options.target });
  return { comms, poller };
}

/** Resolves once the server holds a live connection from `thumbprint`. */
export async function connected(server: CommsServer, thumbprint: Thumbprint) {
  while (!server.links.pick(thumbprint)) await once(server, 'connected');
  return server.links.pick(thumbprint)!;
}

export const echo: Handler = async (args) => args;

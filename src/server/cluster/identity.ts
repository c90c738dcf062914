import { identityFromPem, type CertificateIdentity } from '../../pki/certificate.js';
import type { Logger } from '../../logging.js';
import type { Coordination } from '../store/coordination.js';

const KEY = 'server-certificate';

/**
 * The certificate every node of a cluster presents, so a tentacle pinned to one
 * thumbprint can land on any node behind a load balancer. The first node to start on the
 * database contributes its own; the others adopt it (the certificate in their data
 * directory is then unused, and the log says so).
 */
export async function adoptClusterIdentity(coordination: Coordination, local: CertificateIdentity, logger: Logger): Promise<CertificateIdentity> {
  const stored = await coordination.sharedSetting(KEY, JSON.stringify({ certPem: local.certPem, keyPem: local.keyPem }));
  const identity = decode(stored);
  if (identity.thumbprint !== local.thumbprint) {
    logger.info(
      { cluster: identity.thumbprint, local: local.thumbprint },
      'cluster: this node presents the cluster certificate stored in the database, not the one in its data directory',
    );
  }
  return identity;
}

/**
 * Makes `identity` the certificate every node presents from its next start (a completed
 * certificate rotation; running nodes switch through certificate-rotation.ts).
 */
export async function replaceClusterIdentity(coordination: Coordination, identity: CertificateIdentity): Promise<void> {
  await coordination.replaceSharedSetting(KEY, JSON.stringify({ certPem: identity.certPem, keyPem: identity.keyPem }));
}

/** The cluster certificate's thumbprint, or null before the first node started. */
export async function readClusterThumbprint(coordination: Coordination): Promise<string | null> {
  const stored = await coordination.getSharedSetting(KEY);
  return stored === null ? null : decode(stored).thumbprint;
}

function decode(stored: string): CertificateIdentity {
  const { certPem, keyPem } = JSON.parse(stored) as { certPem: string; keyPem: string };
  return identityFromPem(certPem, keyPem);
}

import { createHash } from 'node:crypto';
import { readCertificate } from './identity.js';

/**
 * The public-key pin of a certificate in the form curl's `--pinnedpubkey` takes:
 * `sha256//` + base64 of the SHA-256 of its DER SubjectPublicKeyInfo (RFC 7469's pin-sha256).
 * It names the key, not the certificate: a certificate renewed on the same key keeps it.
 */
export function spkiPinOfPem(certPem: string): string {
  const spki = readCertificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return `sha256//${createHash('sha256').update(spki).digest('base64')}`;
}

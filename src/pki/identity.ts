import { X509Certificate, type KeyObject } from 'node:crypto';
import { ReefError } from '../errors.js';
import { assertUsableKey, readPrivateKeyPem } from './private-key.js';
import { thumbprintOfDer, type Thumbprint } from './thumbprint.js';

/**
 * A certificate with its private key, and the certificate's thumbprint. Always normalised:
 * `certPem` is one PEM certificate, `keyPem` an unencrypted PKCS#8 PEM key.
 */
export interface CertificateIdentity {
  certPem: string;
  keyPem: string;
  thumbprint: Thumbprint;
}

/** Certificates and private keys found in some input, not yet paired. */
export interface IdentityParts {
  certificates: X509Certificate[];
  keys: KeyObject[];
}

const KEY_LABELS = new Set(['PRIVATE KEY', 'ENCRYPTED PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY']);
const CERT_LABELS = new Set(['CERTIFICATE', 'X509 CERTIFICATE']);
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\n[\s\S]*?\n-----END \1-----/g;

/**
 * Finds the certificates and private keys in PEM text. Other blocks (EC PARAMETERS,
 * PUBLIC KEY, requests) are ignored, so a typical `cat cert.pem key.pem` bundle works.
 */
export function partsFromPem(text: string, password?: string): IdentityParts {
  const parts: IdentityParts = { certificates: [], keys: [] };
  for (const match of text.replace(/\r\n?/g, '\n').matchAll(PEM_BLOCK)) {
    const [block, label = ''] = match;
    if (CERT_LABELS.has(label)) parts.certificates.push(readCertificate(block));
    else if (KEY_LABELS.has(label)) parts.keys.push(readPrivateKeyPem(block, password));
    else if (label === 'OPENSSH PRIVATE KEY') {
      throw new ReefError(
        'REEF_BAD_PRIVATE_KEY',
        'The private key is in OpenSSH format, which TLS cannot use. Convert it with `ssh-keygen -p -m PEM -f <file>`.',
      );
    }
  }
  return parts;
}

export function readCertificate(pemOrDer: string | Buffer): X509Certificate {
  try {
    return new X509Certificate(pemOrDer);
  } catch (err) {
    throw new ReefError('REEF_BAD_CERTIFICATE', `The certificate could not be read: ${(err as Error).message}.`, {
      cause: err,
    });
  }
}

/**
 * Picks the certificate that belongs to a private key. Inputs often carry a chain (leaf
 * plus intermediates); only the leaf matters, since peers pin its thumbprint.
 */
export function identityFromParts({ certificates, keys }: IdentityParts): CertificateIdentity {
  if (certificates.length === 0) {
    throw new ReefError(
      'REEF_BAD_CERTIFICATE',
      keys.length > 0
        ? 'A private key was found but no certificate. Supply the certificate as well.'
        : 'No certificate was found. Expected PEM ("-----BEGIN CERTIFICATE-----") or a PKCS#12 (.pfx/.p12) file.',
    );
  }
  if (keys.length === 0) {
    throw new ReefError(
      'REEF_NO_PRIVATE_KEY',
      `A certificate (${certificates[0]?.subject.replace(/\n/g, ', ')}) was found but no private key. ` +
        'Supply the private key as well, or export a PKCS#12 (.pfx) file that includes it.',
    );
  }
  for (const key of keys) {
    const cert = certificates.find((c) => c.checkPrivateKey(key));
    if (cert) {
      assertUsableKey(key);
      return {
        certPem: cert.toString(),
        keyPem: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
        thumbprint: thumbprintOfDer(cert.raw),
      };
    }
  }
  const subjects = certificates.map((c) => `"${c.subject.replace(/\n/g, ', ')}"`).join(', ');
  throw new ReefError(
    'REEF_KEY_MISMATCH',
    `The private key does not belong to the certificate (checked ${subjects}). ` +
      'Supply the key that was created together with this certificate.',
  );
}

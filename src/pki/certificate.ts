import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { ReefError } from '../errors.js';
import { thumbprintOfDer, type Thumbprint } from './thumbprint.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** A certificate with its private key, both PEM, and the certificate's thumbprint. */
export interface CertificateIdentity {
  certPem: string;
  keyPem: string;
  thumbprint: Thumbprint;
}

export interface GenerateOptions {
  /** Validity in years from now; self-signed identities are pinned, not expired, so long by default. */
  years?: number;
}

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A self-signed ECDSA P-256 certificate whose subject common name is `commonName`. */
export async function generateCertificate(
  commonName: string,
  options: GenerateOptions = {},
): Promise<CertificateIdentity> {
  if (!commonName.trim()) throw new ReefError('REEF_BAD_SUBJECT', 'A certificate needs a non-empty subject name.');
  const years = options.years ?? 100;
  const keys = await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
  const notBefore = new Date(Date.now() - 24 * 3600 * 1000); // tolerate clock skew between hosts
  const notAfter = new Date(notBefore);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + years);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01' + randomBytes(15).toString('hex'), // positive, 128 bits of randomness
    name: new x509.Name([{ CN: [commonName] }]),
    notBefore,
    notAfter,
    signingAlgorithm: ECDSA_P256,
    keys: keys as unknown as CryptoKeyPair,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })
    .export({ format: 'pem', type: 'pkcs8' })
    .toString();
  const certPem = cert.toString('pem') + '\n';
  return { certPem, keyPem, thumbprint: thumbprintOfDer(new Uint8Array(cert.rawData)) };
}

/** Builds an identity from PEM text, checking that the key belongs to the certificate. */
export function identityFromPem(certPem: string, keyPem: string, passphrase?: string): CertificateIdentity {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new ReefError('REEF_BAD_CERTIFICATE', `The certificate could not be read: ${(err as Error).message}.`, { cause: err });
  }
  let key;
  try {
    key = createPrivateKey({ key: keyPem, passphrase });
  } catch (err) {
    throw new ReefError(
      'REEF_BAD_PRIVATE_KEY',
      `The private key could not be read (${(err as Error).message}). If it is encrypted, pass its password.`,
      { cause: err },
    );
  }
  if (!cert.checkPrivateKey(key)) {
    throw new ReefError('REEF_KEY_MISMATCH', 'The private key does not belong to the certificate.');
  }
  return {
    certPem: cert.toString(),
    keyPem: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
    thumbprint: thumbprintOfDer(cert.raw),
  };
}

export function describeCertificate(certPem: string): { subject: string; notAfter: string; thumbprint: Thumbprint } {
  const cert = new X509Certificate(certPem);
  return { subject: cert.subject, notAfter: cert.validTo, thumbprint: thumbprintOfDer(cert.raw) };
}

import type * as X509 from '@peculiar/x509';
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { ReefError } from '../errors.js';
import { identityFromParts, partsFromPem, readCertificate, type CertificateIdentity } from './identity.js';
import { thumbprintOfDer, type Thumbprint } from './thumbprint.js';

export type { CertificateIdentity } from './identity.js';

/**
 * @peculiar/x509, with the reflect-metadata it needs, loaded on first use: it takes a few
 * hundred ms to load, more than the rest of the server's start before it listens, and only
 * generating a certificate needs it (a restart with its identity in place never does).
 */
let x509Loaded: Promise<typeof X509> | undefined;
function loadX509(): Promise<typeof X509> {
  x509Loaded ??= import('reflect-metadata')
    .then(() => import('@peculiar/x509'))
    .then((x509) => {
      x509.cryptoProvider.set(webcrypto as unknown as Crypto);
      return x509;
    });
  return x509Loaded;
}

export interface GenerateOptions {
  /** Validity in years from now; self-signed identities are pinned, not expired, so long by default. */
  years?: number;
  /**
   * Host names and IP addresses for the subjectAltName. Clients that verify names (curl
   * with --cacert, a browser told to trust the certificate) read only this extension,
   * never the common name (RFC 6125 6.4.4). None: no extension, as for a Tentacle.
   */
  subjectAltNames?: { dns?: readonly string[]; ip?: readonly string[] };
}

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A self-signed ECDSA P-256 certificate whose subject common name is `commonName`. */
export async function generateCertificate(
  commonName: string,
  options: GenerateOptions = {},
): Promise<CertificateIdentity> {
  if (!commonName.trim()) throw new ReefError('REEF_INVALID_ARGUMENT', 'A certificate needs a non-empty subject name.');
  const years = options.years ?? 100;
  const x509 = await loadX509();
  const keys = await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
  const notBefore = new Date(Date.now() - 24 * 3600 * 1000); // tolerate clock skew between hosts
  const notAfter = new Date(notBefore);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + years);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01' + randomBytes(15).toString('hex'), // positive (leading 01), then 120 random bits
    name: new x509.Name([{ CN: [commonName] }]),
    notBefore,
    notAfter,
    signingAlgorithm: ECDSA_P256,
    keys: keys as unknown as CryptoKeyPair,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      ...subjectAltNameExtension(x509, options.subjectAltNames),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })
    .export({ format: 'pem', type: 'pkcs8' })
    .toString();
  const certPem = cert.toString('pem') + '\n';
  return { certPem, keyPem, thumbprint: thumbprintOfDer(new Uint8Array(cert.rawData)) };
}

function subjectAltNameExtension(x509: typeof X509, names: GenerateOptions['subjectAltNames']): X509.Extension[] {
  const entries = [
    ...[...new Set(names?.dns ?? [])].map((value) => ({ type: 'dns' as const, value })),
    ...[...new Set(names?.ip ?? [])].map((value) => ({ type: 'ip' as const, value })),
  ];
  return entries.length ? [new x509.SubjectAlternativeNameExtension(entries)] : [];
}

/**
 * Builds an identity from PEM text, checking that the key belongs to the certificate.
 * `certPem` may hold a chain; the certificate matching the key is kept. `passphrase`
 * opens an encrypted key.
 */
export function identityFromPem(certPem: string, keyPem: string, passphrase?: string): CertificateIdentity {
  const certs = partsFromPem(certPem);
  const keys = partsFromPem(keyPem, passphrase);
  return identityFromParts({ certificates: certs.certificates, keys: keys.keys });
}

export interface CertificateDescription {
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  thumbprint: Thumbprint;
}

export function describeCertificate(certPem: string): CertificateDescription {
  const cert = readCertificate(certPem);
  return {
    subject: cert.subject.replace(/\n/g, ', '),
    issuer: cert.issuer.replace(/\n/g, ', '),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    thumbprint: thumbprintOfDer(cert.raw),
  };
}

import type { X509Certificate } from 'node:crypto';
import { ReefError } from '../errors.js';
import { identityFromParts, type CertificateIdentity } from './identity.js';
import { readCertificateFiles, type ImportCertificateFilesOptions } from './import.js';
import { spkiPinOfPem } from './spki-pin.js';

/**
 * A certificate issued by a certificate authority for people's clients (browsers, curl,
 * the admin CLI without a thumbprint), with the intermediates they need to reach a root
 * they trust. Unlike a pinned identity, what matters here is the chain, the names and the
 * dates, so those are kept and checked.
 */
export interface ServingCertificate extends CertificateIdentity {
  /** The leaf, then each issuer up to (not including) a self-signed root: what the server sends. */
  chainPem: string;
  subject: string;
  issuer: string;
  /** The subjectAltName as OpenSSL prints it ("DNS:reef.example.com, IP Address:10.0.0.1"), or "" when absent. */
  names: string;
  notBefore: Date;
  notAfter: Date;
  /** Issued by itself: browsers will not trust it, so HSTS would only lock people out. */
  selfSigned: boolean;
  /** `sha256//<base64>` of the leaf's public key, for curl's --pinnedpubkey. */
  publicKeyPin: string;
}

/**
 * Reads a PEM file (certificate, intermediates and key, in any order; or the key in
 * `keyFile`) or a PKCS#12 file, pairs the key with its certificate (REEF_KEY_MISMATCH,
 * REEF_NO_PRIVATE_KEY, REEF_BAD_PASSWORD... as for any imported certificate) and orders the
 * chain from the leaf up. Certificates of the file that are not on the leaf's chain are left
 * out. Dates are not judged here: see `validityProblem`.
 */
export async function loadServingCertificate(options: ImportCertificateFilesOptions): Promise<ServingCertificate> {
  const parts = await readCertificateFiles(options);
  const identity = identityFromParts(parts);
  const leaf = parts.certificates.find((cert) => cert.toString() === identity.certPem)!;
  const chain = chainFrom(leaf, parts.certificates);
  return {
    ...identity,
    chainPem: chain.map((cert) => cert.toString()).join(''),
    subject: oneLine(leaf.subject),
    issuer: oneLine(leaf.issuer),
    names: leaf.subjectAltName ?? '',
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    selfSigned: isSelfSigned(leaf),
    publicKeyPin: spkiPinOfPem(identity.certPem),
  };
}

/** Why the certificate cannot be presented at `now` (expired, not yet valid), or undefined when it can. */
export function validityProblem(cert: Pick<ServingCertificate, 'notBefore' | 'notAfter'>, now = new Date()): string | undefined {
  if (now < cert.notBefore) return `it is not valid before ${cert.notBefore.toISOString()}`;
  if (now >= cert.notAfter) return `it expired on ${cert.notAfter.toISOString()}`;
  return undefined;
}

/** Leaf first, then its issuer, and so on while the file holds it; a self-signed root is not sent (clients have their own). */
function chainFrom(leaf: X509Certificate, all: X509Certificate[]): X509Certificate[] {
  const chain = [leaf];
  let current = leaf;
  while (!isSelfSigned(current)) {
    const issuer = all.find((cert) => !chain.includes(cert) && current.checkIssued(cert) && current.verify(cert.publicKey));
    if (!issuer || isSelfSigned(issuer)) break;
    chain.push(issuer);
    current = issuer;
  }
  return chain;
}

/** Signed by its own key under its own name. (Not checkIssued: OpenSSL's check also wants keyCertSign, which a self-signed server certificate lacks.) */
function isSelfSigned(cert: X509Certificate): boolean {
  return cert.subject === cert.issuer && cert.verify(cert.publicKey);
}

function oneLine(name: string): string {
  return name.replace(/\n/g, ', ');
}

/** For messages: the file named by the option the operator set. */
export function servingCertificateError(file: string, err: unknown): ReefError {
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof ReefError ? err.code : 'REEF_BAD_CERTIFICATE';
  return new ReefError(code, `The HTTPS certificate ${file} cannot be used: ${message}`, { cause: err });
}

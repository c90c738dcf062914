import { createHash, X509Certificate } from 'node:crypto';
import { ReefError } from '../errors.js';

/** A thumbprint is the SHA-256 of the DER certificate, shown as 64 uppercase hex digits. */
export type Thumbprint = string;

const HEX64 = /^[0-9A-F]{64}$/;

export function thumbprintOfDer(der: Uint8Array): Thumbprint {
  return createHash('sha256').update(der).digest('hex').toUpperCase();
}

export function thumbprintOfPem(pem: string): Thumbprint {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    throw new ReefError('REEF_BAD_CERTIFICATE', `The certificate could not be read: ${(err as Error).message}.`, {
      cause: err,
    });
  }
  return thumbprintOfDer(cert.raw);
}

/**
 * Accepts a thumbprint as people paste it: any case, with or without colons, spaces or
 * dashes, even with the "sha256 Fingerprint=" prefix that `openssl x509 -fingerprint
 * -sha256` prints. Throws a clear error otherwise.
 */
export function normalizeThumbprint(input: string): Thumbprint {
  const compact = input
    .trim()
    .replace(/^(sha-?256\s+)?fingerprint\s*=/i, '')
    .replace(/[:\s-]/g, '')
    .toUpperCase();
  if (!HEX64.test(compact)) {
    const sha1 = /^[0-9A-F]{40}$/.test(compact)
      ? ' That looks like a SHA-1 thumbprint; Reef pins SHA-256 (openssl x509 -noout -fingerprint -sha256).'
      : '';
    throw new ReefError(
      'REEF_BAD_THUMBPRINT',
      `"${shorten(input)}" is not a SHA-256 thumbprint: expected 64 hexadecimal digits (colons allowed), ` +
        `as printed by "reef server show-thumbprint" or "tentacle show-thumbprint".${sha1}`,
    );
  }
  return compact;
}

function shorten(text: string): string {
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

export function isThumbprint(input: string): boolean {
  try {
    normalizeThumbprint(input);
    return true;
  } catch {
    return false;
  }
}

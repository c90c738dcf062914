import { createHash, X509Certificate } from 'node:crypto';
import { ReefError } from '../errors.js';

/** A thumbprint is the SHA-256 of the DER certificate, shown as 64 uppercase hex digits. */
export type Thumbprint = string;

const HEX64 = /^[0-9A-F]{64}$/;

export function thumbprintOfDer(der: Uint8Array): Thumbprint {
  return createHash('sha256').update(der).digest('hex').toUpperCase();
}

export function thumbprintOfPem(pem: string): Thumbprint {
  return thumbprintOfDer(new X509Certificate(pem).raw);
}

/**
 * Accepts a thumbprint as people paste it: any case, with or without colons or spaces
 * (as `openssl x509 -fingerprint -sha256` prints it). Throws a clear error otherwise.
 */
export function normalizeThumbprint(input: string): Thumbprint {
  const compact = input.trim().replace(/[:\s-]/g, '').toUpperCase();
  if (!HEX64.test(compact)) {
    throw new ReefError(
      'REEF_BAD_THUMBPRINT',
      `"${input}" is not a SHA-256 thumbprint: expected 64 hexadecimal digits (colons allowed), ` +
        `as printed by "reef server show-thumbprint" or "tentacle show-thumbprint".`,
    );
  }
  return compact;
}

export function isThumbprint(input: string): boolean {
  try {
    normalizeThumbprint(input);
    return true;
  } catch {
    return false;
  }
}

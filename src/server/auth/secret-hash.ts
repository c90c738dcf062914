import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * How Reef stores random secrets (API keys, join tokens): `sha256$<base64 SHA-256 of the
 * secret>`. These secrets are 160 random bits, not passwords: nobody can guess one or
 * brute-force its hash, so a slow, salted hash buys nothing (and its cost per check is what
 * lets a burst of guesses starve a server). Without a salt the stored form is also what a
 * token's row is found by.
 */

export const SHA256_FORMAT = 'sha256$';

export function sha256Digest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** The stored form of a secret's hash. */
export function storedSecretHash(secret: string): string {
  return SHA256_FORMAT + sha256Digest(secret).toString('base64');
}

/** true when `presented` hashes to `stored` (a `sha256$` hash), compared in constant time. */
export function matchesStoredHash(presented: string, stored: string): boolean {
  if (!stored.startsWith(SHA256_FORMAT)) return false;
  const expected = Buffer.from(stored.slice(SHA256_FORMAT.length), 'base64');
  const actual = sha256Digest(presented);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { randomBase32 } from '../store/ids.js';
import { sharedScryptPool } from './scrypt-pool.js';

/**
 * Portal passwords, hashed with scrypt. The stored form names its own parameters
 * (`scrypt$N=32768,r=8,p=1$<salt>$<hash>`, base64), so they can be raised later without
 * breaking existing hashes. Passwords are compared in constant time and never logged.
 * Hashing runs on the bounded scrypt pool (./scrypt-pool.ts): when it is full, hashing
 * and verifying reject with REEF_BUSY (HashingBusyError) rather than queue without end.
 */

export interface PasswordHashOptions {
  /** scrypt cost. Default 32768 (2^15): about 100 ms and 32 MiB per hash. */
  N?: number;
  r?: number;
  p?: number;
}

const DEFAULTS: Required<PasswordHashOptions> = { N: 32768, r: 8, p: 1 };
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Longer input is refused before hashing: scrypt's cost does not depend on it, but memory to read it does. */
export const MAX_PASSWORD_LENGTH = 1024;
const FORMAT = /^scrypt\$N=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

function derive(password: string, salt: Buffer, length: number, params: Required<PasswordHashOptions>): Promise<Buffer> {
  return sharedScryptPool().hash({ secret: password.normalize('NFC'), salt, keyLength: length, params });
}

export async function hashPassword(password: string, options: PasswordHashOptions = {}): Promise<string> {
  if (typeof password !== 'string' || password.length === 0) throw new TypeError('A password must be a non-empty string.');
  if (password.length > MAX_PASSWORD_LENGTH) throw new TypeError(`A password must be at most ${MAX_PASSWORD_LENGTH} characters.`);
  const params = { ...DEFAULTS, ...options };
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, HASH_BYTES, params);
  return `scrypt$N=${params.N},r=${params.r},p=${params.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/**
 * true when `password` matches `stored`. A malformed stored hash or oversized input is
 * simply false. The derived bytes are compared with timingSafeEqual.
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  if (typeof password !== 'string' || password.length === 0 || password.length > MAX_PASSWORD_LENGTH) return false;
  const match = FORMAT.exec(stored);
  if (!match) return false;
  const params = { N: Number(match[1]), r: Number(match[2]), p: Number(match[3]) };
  // Refuse absurd parameters rather than let a tampered row pin the CPU or memory.
  if (params.N < 2 || params.N > 2 ** 20 || (params.N & (params.N - 1)) !== 0 || params.r < 1 || params.r > 32 || params.p < 1 || params.p > 16) return false;
  const expected = Buffer.from(match[5]!, 'base64');
  if (expected.length < 16) return false;
  const actual = await derive(password, Buffer.from(match[4]!, 'base64'), expected.length, params);
  return timingSafeEqual(expected, actual);
}

/** A password for a generated account: 24 base32 characters (120 random bits), easy to copy. */
export function generatePassword(): string {
  return randomBase32(24);
}

/** Used when the username is unknown, so a missing user costs the same time as a wrong password. */
let dummyHash: Promise<string> | undefined;
export function dummyPasswordHash(): Promise<string> {
  if (!dummyHash) {
    const made = hashPassword(randomBytes(16).toString('hex'));
    // A refusal (pool full) must not be remembered: the next sign-in makes it again.
    made.catch(() => {
      if (dummyHash === made) dummyHash = undefined;
    });
    dummyHash = made;
  }
  return dummyHash;
}

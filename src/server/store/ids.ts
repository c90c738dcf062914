import { randomBytes } from 'node:crypto';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** `length` characters of uppercase RFC 4648 base32, 5 random bits each. */
export function randomBase32(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  // 256 is a multiple of 32, so taking the low 5 bits of each byte is unbiased.
  for (let i = 0; i < length; i++) out += BASE32[bytes[i]! & 31];
  return out;
}

/** Opaque row ids such as `m-k3x9q2z7vb4d` (60 random bits). */
export function newId(prefix: 'm' | 'env' | 'pool' | 'key' | 'user' | 'tok' | 'rot'): string {
  return `${prefix}-${randomBase32(12).toLowerCase()}`;
}

/** Tickets name a script on a tentacle that may serve several servers: 130 random bits. */
export function newTicket(): string {
  return `TKT-${randomBase32(26)}`;
}

const TASK_ID = /^T-(\d{6,})$/;

export function taskIdOf(num: number): string {
  return `T-${String(num).padStart(6, '0')}`;
}

/** The task number in an id, or null for something that is not a task id. */
export function taskNumOf(id: string): number | null {
  const match = TASK_ID.exec(id);
  return match ? Number(match[1]) : null;
}

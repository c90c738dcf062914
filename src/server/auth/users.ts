import type { Store, User } from '../store/types.js';
import { dummyPasswordHash, hashPassword, verifyPassword } from './passwords.js';

/** Portal accounts: people who sign in with a username and password. */

/** The user a first start makes (auth/initial-credentials.ts). */
export const INITIAL_ADMIN = 'admin';

export async function createUser(store: Store, username: string, password: string): Promise<User> {
  return store.insertUser({ username, passwordHash: await hashPassword(password) });
}

/** The user when the username (any case) and password match; null otherwise, in about the same time either way. */
export async function checkCredentials(store: Store, username: string, password: string): Promise<User | null> {
  const credential = typeof username === 'string' && username.trim() !== '' ? await store.getUserCredential(username.trim()) : null;
  if (!credential) {
    await verifyPassword(password, await dummyPasswordHash());
    return null;
  }
  if (!(await verifyPassword(password, credential.passwordHash))) return null;
  return { id: credential.id, username: credential.username, createdAt: credential.createdAt };
}

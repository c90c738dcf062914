import { ReefError } from '../../errors.js';
import type { Access, Store, User } from '../store/types.js';
import { dummyPasswordHash, generatePassword, hashPassword, verifyPassword } from './passwords.js';

/** Portal accounts: people who sign in with a username and password. */

/** The user a first start makes (auth/initial-credentials.ts). */
export const INITIAL_ADMIN = 'admin';

/**
 * A new user; without `access`, an admin of the whole server (check a scope with checkedAccess
 * first, and a password a person chose with checkedNewPassword).
 */
export async function createUser(store: Store, username: string, password: string, access?: Access): Promise<User> {
  return store.insertUser({ username, passwordHash: await hashPassword(password), access });
}

/** Shortest password a person may choose; generated ones are 24 characters. */
export const MIN_PASSWORD_LENGTH = 12;

/** A password a person chose, checked before hashing; REEF_INVALID_ARGUMENT says what is wrong. */
export function checkedNewPassword(password: string): string {
  if (typeof password !== 'string' || password.length < MIN_PASSWORD_LENGTH) {
    throw new ReefError('REEF_INVALID_ARGUMENT', `A password must be at least ${MIN_PASSWORD_LENGTH} characters long.`);
  }
  return password;
}

/**
 * Sets a user's password (the given one, or a generated one) and ends their sessions.
 * Returns the password, to show once. REEF_NOT_FOUND when there is no such user.
 */
export async function resetPassword(store: Store, idOrName: string, password?: string): Promise<{ user: User; password: string }> {
  const user = await store.getUser(idOrName);
  if (!user) throw new ReefError('REEF_NOT_FOUND', `No user has the id or name "${idOrName}".`);
  const chosen = password === undefined ? generatePassword() : checkedNewPassword(password);
  if (!(await store.setUserPassword(user.id, await hashPassword(chosen)))) throw new ReefError('REEF_NOT_FOUND', `User "${user.username}" was deleted meanwhile.`);
  return { user, password: chosen };
}

/**
 * A signed-in user changes their own password: the current one must be right (a session
 * left open on a shared screen must not be enough). Their other sessions end; `keepSession`
 * (the id hash of the one asking) stays. REEF_WRONG_PASSWORD when the current one is wrong.
 */
export async function changeOwnPassword(store: Store, username: string, current: string, next: string, keepSession?: string): Promise<User> {
  const user = await checkCredentials(store, username, current);
  if (!user) throw new ReefError('REEF_WRONG_PASSWORD', 'The current password is not right; the password was not changed.');
  await store.setUserPassword(user.id, await hashPassword(checkedNewPassword(next)), keepSession);
  return user;
}

/** The user when the username (any case) and password match; null otherwise, in about the same time either way. */
export async function checkCredentials(store: Store, username: string, password: string): Promise<User | null> {
  const credential = typeof username === 'string' && username.trim() !== '' ? await store.getUserCredential(username.trim()) : null;
  if (!credential) {
    await verifyPassword(password, await dummyPasswordHash());
    return null;
  }
  if (!(await verifyPassword(password, credential.passwordHash))) return null;
  const { passwordHash: _hash, ...user } = credential;
  return user;
}

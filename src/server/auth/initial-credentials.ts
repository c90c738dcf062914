import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../durable-fs.js';
import type { Logger } from '../../logging.js';
import type { Store } from '../store/types.js';
import { createApiKey } from './apikeys.js';
import { generatePassword } from './passwords.js';
import { createUser, INITIAL_ADMIN } from './users.js';

/**
 * The credentials a first start makes (the `admin` password, the first API key) are printed
 * once, and kept in a 0600 file in the data directory too, until that user first signs in:
 * a start-up message lost in a log file, a closed terminal or a quick start that hid it must
 * not lock the operator out (after that, `reef user reset-password --data` resets it offline).
 * The password is on disk before the user is stored, so no crash can leave a stored password
 * nobody was told.
 *
 * In a cluster the file is on the node that made the credentials, and goes when the user
 * signs in through that node.
 */
export const INITIAL_CREDENTIALS_FILE = 'initial-admin-credentials';

export interface InitialCredentials {
  /** Set when this start made the API key. */
  apiKey?: string;
  /** Set when this start made the `admin` user. */
  password?: string;
  /** The file holding the first-run credentials, while it exists (also on later starts). */
  file?: string;
}

export function initialCredentialsPath(dataDir: string): string {
  return join(dataDir, INITIAL_CREDENTIALS_FILE);
}

/**
 * On a store without API keys, makes one; without users, makes `admin` with a random
 * password; writes what it made to the file. Call once the node is up: a first start that
 * fails must not use up the one showing.
 */
export async function ensureInitialCredentials(store: Store, dataDir: string, nodeName: string): Promise<InitialCredentials> {
  const file = initialCredentialsPath(dataDir);
  const needKey = (await store.listApiKeys()).length === 0;
  const needAdmin = (await store.countUsers()) === 0;
  if (!needKey && !needAdmin) return (await exists(file)) ? { file } : {};
  const password = needAdmin ? generatePassword() : undefined;
  const apiKey = needKey ? (await createApiKey(store, INITIAL_ADMIN)).key : undefined;
  // A password still waiting in the file from an earlier start stays (only a new key is added).
  const earlier = await readInitialCredentials(dataDir);
  await writeFileAtomic(file, render({ apiKey: apiKey ?? earlier?.apiKey, password: password ?? earlier?.password }, nodeName));
  if (password !== undefined) {
    try {
      await createUser(store, INITIAL_ADMIN, password);
    } catch (err) {
      // Not stored (another node made the user first?): the file must not name a password that does not work.
      if (apiKey === undefined) await rm(file, { force: true });
      else await writeFileAtomic(file, render({ apiKey }, nodeName));
      throw err;
    }
  }
  return { apiKey, password, file };
}

/** Deletes the file once `username` has signed in, when it holds that user's credentials. */
export async function forgetInitialCredentials(dataDir: string, username: string, logger: Logger): Promise<void> {
  const file = initialCredentialsPath(dataDir);
  const credentials = await readInitialCredentials(dataDir);
  if (!credentials || credentials.username.toLowerCase() !== username.toLowerCase()) return;
  await rm(file, { force: true });
  logger.info({ file, user: username }, 'first sign-in: the first-run credentials file is deleted');
}

/** What the file holds (`name: value` lines), or undefined when there is none. */
export async function readInitialCredentials(dataDir: string): Promise<{ username: string; password?: string; apiKey?: string } | undefined> {
  let text: string;
  try {
    text = await readFile(initialCredentialsPath(dataDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([a-z-]+):\s*(\S+)\s*$/.exec(line);
    if (match) fields.set(match[1]!, match[2]!);
  }
  return { username: fields.get('username') ?? INITIAL_ADMIN, password: fields.get('password'), apiKey: fields.get('api-key') };
}

function render(made: { apiKey?: string; password?: string }, nodeName: string): string {
  return [
    `# Reef: the credentials the first start of node "${nodeName}" made, at ${new Date().toISOString()}.`,
    `# This file is deleted when "${INITIAL_ADMIN}" first signs in to the portal; keep them somewhere safe before then.`,
    `username: ${INITIAL_ADMIN}`,
    ...(made.password !== undefined ? [`password: ${made.password}`] : []),
    ...(made.apiKey !== undefined ? [`api-key: ${made.apiKey}`] : []),
    '',
  ].join('\n');
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

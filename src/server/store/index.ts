import { fileURLToPath } from 'node:url';
import { ReefError } from '../../errors.js';
import { createPostgresStore, redactUrl, type PostgresStoreOptions } from './postgres/database.js';
import { createSqliteStore, type SqliteStoreOptions } from './sqlite/database.js';
import type { Store } from './types.js';

export type { Store } from './types.js';
export { createPostgresStore, type PostgresStoreOptions } from './postgres/database.js';
export { createSqliteStore, type SqliteStoreOptions } from './sqlite/database.js';

export interface StoreOptions {
  sqlite?: SqliteStoreOptions;
  postgres?: PostgresStoreOptions;
}

export type StoreLocation = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

// A scheme has two or more characters, so a Windows drive (`C:\reef.db`) stays a path.
const SCHEME = /^([a-z][a-z0-9+.-]+):/i;

/**
 * Which store a `--store` value names:
 * - `postgres://...` or `postgresql://...`: PostgreSQL (libpq URL syntax);
 * - `sqlite:PATH`, `sqlite://PATH` (so `sqlite:///var/lib/reef/reef.db` is absolute) or
 *   `file:///...`: a SQLite file;
 * - anything without a scheme: a SQLite file path.
 */
export function parseStoreLocation(location: string): StoreLocation {
  const scheme = SCHEME.exec(location)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    if (location.trim() === '') throw badLocation(location);
    return { kind: 'sqlite', path: location };
  }
  if (scheme === 'postgres' || scheme === 'postgresql') return { kind: 'postgres', url: location };
  if (scheme === 'file') return { kind: 'sqlite', path: fileURLToPath(location) };
  if (scheme === 'sqlite') {
    const rest = location.slice('sqlite:'.length);
    const path = rest.startsWith('//') ? rest.slice(2) : rest;
    if (path === '') throw badLocation(location);
    return { kind: 'sqlite', path };
  }
  throw badLocation(location);
}

function badLocation(location: string): ReefError {
  const shown = SCHEME.test(location) ? redactUrl(location) : JSON.stringify(location);
  return new ReefError(
    'REEF_INVALID_ARGUMENT',
    `Store ${shown} is neither a SQLite file nor a PostgreSQL URL. Give a file path (reef.db, ` +
      `sqlite:///var/lib/reef/reef.db) or postgres://user:password@host:5432/database.`,
  );
}

/** Opens the store a `--store` value names (see parseStoreLocation), migrated and ready. */
export async function createStore(location: string, options: StoreOptions = {}): Promise<Store> {
  const parsed = parseStoreLocation(location);
  return parsed.kind === 'postgres'
    ? createPostgresStore(parsed.url, options.postgres)
    : createSqliteStore(parsed.path, options.sqlite);
}

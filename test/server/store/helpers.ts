import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteStore, createStore } from '../../../src/server/store/index.js';
import type { MachineInput, Store } from '../../../src/server/store/types.js';
import { createTestDatabase } from '../../support/postgres.js';

export type StoreKind = 'sqlite' | 'postgres';

export interface TempStore {
  store: Store;
  /** What `createStore` opens: the SQLite file's path or the PostgreSQL database's URL. */
  location: string;
  /**
   * Another store on the same database, as a second process or server node would open it.
   * The caller closes it.
   */
  reopen(): Promise<Store>;
  /** Closes the store and removes its file or database. */
  cleanup(): Promise<void>;
}

export interface SqliteTempStore extends TempStore {
  dir: string;
  path: string;
}

/** A SQLite store in a new temporary directory. */
export async function tempStore(): Promise<SqliteTempStore> {
  const dir = await mkdtemp(join(tmpdir(), 'reef-store-'));
  const path = join(dir, 'reef.db');
  const store = await createSqliteStore(path);
  return {
    store,
    dir,
    path,
    location: path,
    reopen: () => createSqliteStore(path),
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A PostgreSQL store on a new database cloned from the migrated template. */
export async function tempPostgresStore(): Promise<TempStore> {
  const db = await createTestDatabase();
  try {
    const store = await createStore(db.url);
    return {
      store,
      location: db.url,
      reopen: () => createStore(db.url),
      async cleanup() {
        await store.close();
        await db.drop();
      },
    };
  } catch (err) {
    await db.drop();
    throw err;
  }
}

const OPENERS: Record<StoreKind, () => Promise<TempStore>> = { sqlite: tempStore, postgres: tempPostgresStore };

/**
 * Declares the same tests once per Store implementation: `open` makes a fresh, empty store
 * of that kind (its own file or database).
 */
export function forEachStore(declare: (kind: StoreKind, open: () => Promise<TempStore>) => void): void {
  for (const kind of Object.keys(OPENERS) as StoreKind[]) declare(kind, OPENERS[kind]);
}

let counter = 0;

/** A distinct valid thumbprint per call. */
export function thumbprint(n = ++counter): string {
  return n.toString(16).toUpperCase().padStart(64, '0');
}

export function target(name: string, extra: Partial<MachineInput> = {}): MachineInput {
  return {
    name,
    kind: 'target',
    thumbprint: thumbprint(),
    commsStyle: 'polling',
    environments: ['Production'],
    roles: ['web'],
    ...extra,
  };
}

export function worker(name: string, extra: Partial<MachineInput> = {}): MachineInput {
  return {
    name,
    kind: 'worker',
    thumbprint: thumbprint(),
    commsStyle: 'polling',
    workerPools: ['Default Worker Pool'],
    ...extra,
  };
}

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteStore } from '../../../src/server/store/sqlite.js';
import type { MachineInput, Store } from '../../../src/server/store/types.js';

export interface TempStore {
  store: Store;
  dir: string;
  path: string;
  /** Closes the store and removes its directory. */
  cleanup(): Promise<void>;
}

export async function tempStore(): Promise<TempStore> {
  const dir = await mkdtemp(join(tmpdir(), 'reef-store-'));
  const path = join(dir, 'reef.db');
  const store = await createSqliteStore(path);
  return {
    store,
    dir,
    path,
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
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

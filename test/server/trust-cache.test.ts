/**
 * The trusted Tentacle thumbprints in memory (the cluster case, a delete on another node,
 * is in test/e2e/cluster-trust.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../src/logging.js';
import { LocalBus } from '../../src/server/cluster/bus.js';
import type { Machine, Store } from '../../src/server/store/types.js';
import { TrustCache } from '../../src/server/trust-cache.js';

const A = 'A'.repeat(64);
const B = 'B'.repeat(64);
const C = 'C'.repeat(64);
const machine = (id: string, thumbprint: string) => ({ id, name: id, thumbprint, nextThumbprint: null }) as Machine;

/** A store of machines in memory whose listMachines can be held half-way. */
function fakeStore(initial: Machine[]) {
  let machines = [...initial];
  let hold: Promise<void> | undefined;
  let lookups = 0;
  const store = {
    listMachines: async () => {
      const snapshot = [...machines];
      await hold;
      return snapshot;
    },
    getMachineByThumbprint: async (thumbprint: string) => {
      lookups++;
      return machines.find((m) => m.thumbprint === thumbprint) ?? null;
    },
    getMachineByNextThumbprint: async (thumbprint: string) => {
      lookups++;
      return machines.find((m) => m.nextThumbprint === thumbprint) ?? null;
    },
    setNextThumbprint: async (id: string, thumbprint: string) => {
      const found = machines.find((m) => m.id === id)!;
      found.nextThumbprint = thumbprint;
      return { ...found };
    },
    promoteNextThumbprint: async (id: string, thumbprint: string) => {
      const found = machines.find((m) => m.id === id)!;
      if (found.nextThumbprint !== thumbprint) return null;
      const previous = found.thumbprint;
      found.thumbprint = thumbprint;
      found.nextThumbprint = null;
      return { machine: { ...found }, previous };
    },
    getMachine: async (idOrName: string) => machines.find((m) => m.id === idOrName) ?? null,
    deleteMachine: async (idOrName: string) => {
      const before = machines.length;
      machines = machines.filter((m) => m.id !== idOrName);
      return machines.length < before;
    },
    createMachine: async (input: { name: string; thumbprint: string }) => {
      const created = machine(input.name, input.thumbprint);
      machines.push(created);
      return created;
    },
  };
  return {
    store: store as unknown as Store,
    holdLists(): () => void {
      let release!: () => void;
      hold = new Promise<void>((resolve) => (release = resolve));
      return () => {
        hold = undefined;
        release();
      };
    },
    get lookups() {
      return lookups;
    },
  };
}

test('trust is answered from memory; a registration and a deletion through the watched store apply at once', async () => {
  const fake = fakeStore([machine('m-a', A)]);
  const cache = new TrustCache(fake.store, silentLogger);
  await cache.start(new LocalBus());
  try {
    const store = cache.watch(fake.store);
    assert.equal(await cache.trusts(A), true);
    assert.equal(fake.lookups, 0, 'no store read for a known thumbprint');
    await store.createMachine({ name: 'm-b', thumbprint: B } as never);
    assert.equal(await cache.trusts(B), true);
    assert.equal(fake.lookups, 0);
    await store.deleteMachine('m-a');
    assert.equal(await cache.trusts(A), false);
    assert.equal(cache.machineOf(B), 'm-b');
  } finally {
    cache.close();
  }
});

test('a deletion made while a full re-read is under way is not undone by it', async () => {
  const fake = fakeStore([machine('m-a', A)]);
  const cache = new TrustCache(fake.store, silentLogger);
  await cache.start(new LocalBus());
  try {
    const store = cache.watch(fake.store);
    const release = fake.holdLists();
    const reloading = cache.reload(); // its query has read m-a already
    await store.deleteMachine('m-a');
    release();
    await reloading;
    assert.equal(await cache.trusts(A), false);
  } finally {
    cache.close();
  }
});

test('a Tentacle certificate rotation: the next thumbprint is trusted once recorded, the previous one no longer once it is promoted', async () => {
  const fake = fakeStore([machine('m-a', A)]);
  const cache = new TrustCache(fake.store, silentLogger);
  await cache.start(new LocalBus());
  try {
    const store = cache.watch(fake.store);
    await store.setNextThumbprint('m-a', C);
    assert.equal(await cache.trusts(C), true);
    assert.equal(await cache.trusts(A), true, 'the current certificate stays trusted until the switch is confirmed');
    assert.equal(fake.lookups, 0);
    await store.promoteNextThumbprint('m-a', C);
    assert.equal(await cache.trusts(A), false, 'the replaced certificate is revoked');
    assert.equal(await cache.trusts(C), true);
    assert.equal(cache.machineOf(C), 'm-a');
  } finally {
    cache.close();
  }
});

test('a next thumbprint recorded behind the cache (another node) is found in the store before a refusal', async () => {
  const fake = fakeStore([machine('m-a', A)]);
  const cache = new TrustCache(fake.store, silentLogger);
  await cache.start(new LocalBus());
  try {
    await fake.store.setNextThumbprint('m-a', C);
    assert.equal(await cache.trusts(C), true);
    assert.equal(cache.machineOf(C), 'm-a');
  } finally {
    cache.close();
  }
});

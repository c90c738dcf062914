import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WriteBatch } from '../../src/server/write-batch.js';

test('entries set in one turn go in one write; those set meanwhile in the next; the latest value of a key wins', async () => {
  const writes: [string, string][][] = [];
  let release: () => void = () => {};
  const batch = new WriteBatch<string>(async (entries) => {
    writes.push([...entries]);
    if (writes.length === 1) await new Promise<void>((resolve) => (release = resolve));
  }, assert.fail);
  const first = [batch.set('a', '1'), batch.set('b', '1'), batch.set('a', '2')];
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  // The first write is under way: these wait for the next one.
  const second = [batch.set('b', '2'), batch.set('c', '1')];
  release();
  await Promise.all([...first, ...second]);
  assert.deepEqual(writes, [[['b', '1'], ['a', '2']], [['b', '2'], ['c', '1']]]);
  await batch.flushed();
});

test('merge combines a value with the one it replaces; a failed write is reported and its waiters still resolve', async () => {
  const written: [string, { carrier?: string }][][] = [];
  const failures: number[] = [];
  let fail = true;
  const batch = new WriteBatch<{ carrier?: string }>(
    async (entries) => {
      if (fail) throw new Error('store down');
      written.push([...entries]);
    },
    (_err, entries) => failures.push(entries),
    (next, previous) => ({ carrier: next.carrier ?? previous.carrier }),
  );
  await Promise.all([batch.set('t', { carrier: 'tcp' }), batch.set('u', {})]);
  assert.deepEqual(failures, [2]);
  fail = false;
  await Promise.all([batch.set('t', { carrier: 'tcp' }), batch.set('t', {})]);
  assert.deepEqual(written, [[['t', { carrier: 'tcp' }]]]);
});

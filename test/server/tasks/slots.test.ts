/** A task's maxParallel: at most N machine runs of one task upgrade at once on a node; other tasks are not held up. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { Slots } from '../../../src/server/tasks/kinds/slots.js';

describe('Slots', () => {
  test('holds at most the limit per key, tells a waiter once, and lets the next in when one is given back', async () => {
    const slots = new Slots();
    const signal = new AbortController().signal;
    let running = 0;
    let most = 0;
    let waits = 0;
    const work = async () => {
      const release = await slots.take('T-1', 3, signal, () => waits++);
      running++;
      most = Math.max(most, running);
      await sleep(50);
      running--;
      release();
      release(); // giving back twice frees one turn, not two
    };
    await Promise.all(Array.from({ length: 8 }, work));
    assert.equal(most, 3);
    assert.equal(waits, 5, 'each of the five that waited said so once');
    // Another task is not held up by this one.
    const other = await slots.take('T-2', 1, signal, () => assert.fail('T-2 waits for nobody'));
    other();
  });

  test('a cancelled waiter stops waiting', async () => {
    const slots = new Slots();
    const held = await slots.take('T-3', 1, new AbortController().signal, () => {});
    const cancel = new AbortController();
    const waiting = slots.take('T-3', 1, cancel.signal, () => {});
    cancel.abort();
    await assert.rejects(waiting, { name: 'AbortError' });
    held();
    (await slots.take('T-3', 1, new AbortController().signal, () => assert.fail('free again')))();
  });
});

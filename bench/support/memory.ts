import { setTimeout as sleep } from 'node:timers/promises';

/**
 * This process's memory once garbage has been collected and freed pages have had a moment
 * to go back (workers run with --expose-gc): what a process really holds, not what it
 * allocated a moment ago. `rss` is the figure; the JS heap is the part V8 accounts for.
 */
export async function settledMemory(): Promise<{ rss: number; heapUsed: number }> {
  for (let i = 0; i < 3; i++) {
    global.gc?.();
    await sleep(200);
  }
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed };
}

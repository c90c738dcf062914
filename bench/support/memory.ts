import { setTimeout as sleep } from 'node:timers/promises';

/**
 * This process's memory once garbage has been collected and freed pages have had a moment
 * to go back (workers run with --expose-gc): what a process really holds, not what it
 * allocated a moment ago. `rss` is the figure; the JS heap is the part V8 accounts for.
 */
export async function settledMemory(): Promise<Memory> {
  for (let i = 0; i < 3; i++) {
    global.gc?.();
    await sleep(200);
  }
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed };
}

export interface Memory {
  rss: number;
  heapUsed: number;
}

/** What `connections` added to a process's memory, per connection (the JS heap is part of RSS). */
export function growth(before: Memory, after: Memory, connections: number) {
  return {
    connections,
    rssBeforeMiB: mib(before.rss),
    rssAfterMiB: mib(after.rss),
    rssKiB: (after.rss - before.rss) / 1024 / connections,
    heapKiB: (after.heapUsed - before.heapUsed) / 1024 / connections,
  };
}

function mib(bytes: number): number {
  return Math.round((bytes / 2 ** 20) * 10) / 10;
}

import { setTimeout as sleep } from 'node:timers/promises';

/**
 * This process's resident set size once garbage has been collected and freed pages have
 * had a moment to go back (workers run with --expose-gc): the memory a process really
 * holds, not what it allocated a moment ago.
 */
export async function settledRss(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    global.gc?.();
    await sleep(200);
  }
  return process.memoryUsage().rss;
}

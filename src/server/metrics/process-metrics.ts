/**
 * The process and Node.js runtime metrics (CPU, memory, file descriptors, event loop lag,
 * GC, heap spaces: prom-client's default set). They describe the process, not a server
 * node, so one registry per process holds them, made when the first server starts: its
 * event loop monitor and GC observer then run for the life of the process, however many
 * servers a test process starts and stops.
 */
import { readdir, stat } from 'node:fs/promises';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

/**
 * Left out: the active handles, requests and resources by type. Each scrape would list
 * every socket (20,000 with a fleet that size) to count them by type; `process_open_fds`
 * counts the same sockets. Their `_total` gauges also break Prometheus naming (`_total` is
 * for counters; `promtool check metrics` refuses them).
 */
const LEFT_OUT = [
  'nodejs_active_handles',
  'nodejs_active_handles_total',
  'nodejs_active_requests',
  'nodejs_active_requests_total',
  'nodejs_active_resources',
  'nodejs_active_resources_total',
];

let registry: Registry | undefined;

export function processMetrics(): Registry {
  if (!registry) {
    registry = new Registry();
    collectDefaultMetrics({ register: registry });
    for (const name of LEFT_OUT) registry.removeSingleMetric(name);
    // prom-client lists /proc/self/fd synchronously: 25-30 ms with 19,000 Tentacles
    // connected, with the event loop blocked. This one asks the kernel for the count.
    registry.removeSingleMetric('process_open_fds');
    new Gauge({
      name: 'process_open_fds',
      help: 'Number of open file descriptors.',
      registers: [registry],
      async collect() {
        const count = await openFileDescriptors();
        if (count !== undefined) this.set(count);
      },
    });
  }
  return registry;
}

/**
 * Linux (6.2 and later) gives the number of open descriptors as the size of /proc/self/fd,
 * at once; older kernels say 0 there, and the folder is listed instead, off the event loop.
 * Undefined where there is no /proc.
 */
async function openFileDescriptors(): Promise<number | undefined> {
  try {
    const { size } = await stat('/proc/self/fd');
    if (size > 0) return size;
    return (await readdir('/proc/self/fd')).length - 1; // less the descriptor of the listing itself
  } catch {
    return undefined;
  }
}

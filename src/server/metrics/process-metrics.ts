/**
 * The process and Node.js runtime metrics (CPU, memory, file descriptors, event loop lag,
 * GC, heap spaces: prom-client's default set). They describe the process, not a server
 * node, so one registry per process holds them, made when the first server starts: its
 * event loop monitor and GC observer then run for the life of the process, however many
 * servers a test process starts and stops.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';

let registry: Registry | undefined;

export function processMetrics(): Registry {
  if (!registry) {
    registry = new Registry();
    collectDefaultMetrics({ register: registry });
  }
  return registry;
}

/**
 * The process and Node.js runtime metrics (CPU, memory, file descriptors, event loop lag,
 * GC, heap spaces: prom-client's default set). They describe the process, not a server
 * node, so one registry per process holds them, made when the first server starts: its
 * event loop monitor and GC observer then run for the life of the process, however many
 * servers a test process starts and stops.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * Gauges whose names end in `_total`, which Prometheus keeps for counters (`promtool check
 * metrics` refuses them); each is the sum of the series of the same name without `_total`.
 */
const MISNAMED = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

let registry: Registry | undefined;

export function processMetrics(): Registry {
  if (!registry) {
    registry = new Registry();
    collectDefaultMetrics({ register: registry });
    for (const name of MISNAMED) registry.removeSingleMetric(name);
  }
  return registry;
}

/**
 * Where the numbers come from: the events the node's parts already emit (comms, the task
 * engine, the cluster bus) and a timing wrapper around the store, so the code that does
 * the work carries no metrics code of its own.
 */
import type { CommsServer } from '../../comms/index.js';
import type { ClusterBus } from '../cluster/bus.js';
import type { Store } from '../store/types.js';
import type { TaskEngine } from '../tasks/engine.js';
import { protocolErrors } from '../tentacle-client.js';
import type { ServerMetrics } from './metrics.js';

export interface WatchedNode {
  node: string;
  version: string;
  comms: CommsServer;
  engine: TaskEngine;
  bus: ClusterBus;
}

export function watchNode(metrics: ServerMetrics, { node, version, comms, engine, bus }: WatchedNode): void {
  comms.on('connected', (client, reconnect) => {
    metrics.handshake(client.peer.carrier, client.peer.resumed === true);
    if (reconnect) metrics.reconnect(client.peer.carrier);
  });
  comms.on('refused', (carrier, reason) => metrics.refusal(carrier, reason));
  comms.on('call', (method, seconds, errorCode) => metrics.rpcCall(method, seconds, errorCode));
  comms.on('pickup', (seconds, outcome) => metrics.pickup(seconds, outcome));
  engine.events.on('log', (_taskId, lines) => metrics.logLinesStored(lines.length));
  engine.events.on('finished', ({ of, kind, state, seconds }) => metrics.finished(of, kind, state, seconds));
  if (bus.observe) bus.observe(metrics.clusterBus(() => bus.connected ?? false));
  metrics.bind(node, version, {
    links: () => comms.links.census(),
    waitingForPickup: () => comms.links.waiting,
    activeRuns: () => engine.scheduler.activeRuns,
    msSinceLeaseRenewal: () => engine.scheduler.msSinceRenewal,
    invalidAnswers: () => protocolErrors.count,
    handshakesInFlight: () => comms.admission.handshakesInFlight,
  });
}

/**
 * The store with each operation timed (`getTask`, `coordination.claimWork`): the same
 * object shape, every method wrapped, so callers cannot tell the difference.
 */
export function timeStore(store: Store, metrics: ServerMetrics): Store {
  return { ...timeMethods(store, '', metrics), coordination: timeMethods(store.coordination, 'coordination.', metrics), close: () => store.close() };
}

function timeMethods<T extends object>(target: T, prefix: string, metrics: ServerMetrics): T {
  const timed: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(target)) {
    if (typeof value !== 'function') {
      timed[name] = value;
      continue;
    }
    const operation = prefix + name;
    const method = value as (...args: unknown[]) => unknown;
    timed[name] = (...args: unknown[]) => {
      const started = performance.now();
      const done = (failed: boolean) => metrics.storeOperation(operation, (performance.now() - started) / 1000, failed);
      let result: unknown;
      try {
        result = method.apply(target, args);
      } catch (err) {
        done(true);
        throw err;
      }
      if (!(result instanceof Promise)) {
        done(false);
        return result;
      }
      return result.then(
        (value: unknown) => {
          done(false);
          return value;
        },
        (err: unknown) => {
          done(true);
          throw err;
        },
      );
    };
  }
  return timed as T;
}

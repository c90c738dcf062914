import type { TaskTarget } from '../../api/contract.js';
import { ReefError } from '../../errors.js';
import type { CommsServer } from '../../comms/index.js';
import type { Machine, Store } from '../store/types.js';

/**
 * Turns a task's target into the machines it runs on, with errors that name what is
 * missing. A worker pool target picks one worker: a connected one with the fewest calls
 * in flight, else a healthy one seen most recently.
 */
export async function resolveTarget(store: Store, comms: CommsServer, target: TaskTarget): Promise<Machine[]> {
  if ('environment' in target) {
    const environment = await store.getEnvironment(target.environment);
    if (!environment) throw new ReefError('REEF_NOT_FOUND', `Environment "${target.environment}" does not exist.`);
    const machines = await store.listMachines({ kind: 'target', environment: environment.name, role: target.role });
    if (machines.length === 0) {
      throw new ReefError(
        'REEF_NO_MACHINES',
        target.role
          ? `No deployment target in environment "${environment.name}" has the role "${target.role}".`
          : `Environment "${environment.name}" has no deployment targets.`,
      );
    }
    return machines;
  }
  if ('workerPool' in target) return [pickWorker(await workersOf(store, target.workerPool), comms)];
  const machines = await store.listMachines({ names: target.machines });
  const found = new Set(machines.map((m) => m.name.toLowerCase()));
  const missing = target.machines.filter((name) => !found.has(name.toLowerCase()));
  if (missing.length) throw new ReefError('REEF_NOT_FOUND', `No machine is named ${missing.map((n) => `"${n}"`).join(', ')}.`);
  return machines;
}

/** Every worker in the pool; REEF_NOT_FOUND without the pool, REEF_NO_MACHINES when it has none. */
export async function workersOf(store: Store, poolName: string): Promise<Machine[]> {
  const pool = await store.getWorkerPool(poolName);
  if (!pool) throw new ReefError('REEF_NOT_FOUND', `Worker pool "${poolName}" does not exist.`);
  const workers = await store.listMachines({ kind: 'worker', workerPool: pool.name });
  if (workers.length === 0) throw new ReefError('REEF_NO_MACHINES', `Worker pool "${pool.name}" has no workers.`);
  return workers;
}

function pickWorker(workers: Machine[], comms: CommsServer): Machine {
  const busy = (m: Machine) => comms.links.pick(m.thumbprint)?.inflight;
  const online = workers.filter((m) => busy(m) !== undefined && m.lastHealth !== 'unhealthy');
  if (online.length) return online.reduce((a, b) => (busy(a)! <= busy(b)! ? a : b));
  const healthy = workers.filter((m) => m.lastHealth !== 'unhealthy');
  const pool = healthy.length ? healthy : workers;
  return pool.reduce((a, b) => ((a.lastSeenAt ?? '') >= (b.lastSeenAt ?? '') ? a : b));
}

import type { FleetTarget } from '../../api/contract.js';
import type { CommsServer } from '../../comms/index.js';
import { ReefError } from '../../errors.js';
import type { Machine, Store } from '../store/types.js';
import { resolveTarget, workersOf } from './targets.js';

/**
 * The machines of a fleet operation (docs/operations.md): as a task's target, except that a
 * worker pool is every worker in it (not one picked to run a script), and `all` every machine.
 */
export async function resolveFleetTarget(store: Store, comms: CommsServer, target: FleetTarget): Promise<Machine[]> {
  if ('all' in target) {
    const machines = await store.listMachines();
    if (machines.length === 0) throw new ReefError('REEF_NO_MACHINES', 'No machine is registered.');
    return machines;
  }
  if ('workerPool' in target) return workersOf(store, target.workerPool);
  return resolveTarget(store, comms, target);
}

import type { Command } from 'commander';
import type { FleetTarget } from '../api/contract.js';
import { DEFAULT_FLEET_MAX_PARALLEL } from '../api/fleet.js';
import { ReefError } from '../errors.js';
import { positiveInteger, targetOf, type TargetOpts } from './reef-tasks.js';

/**
 * What the fleet operations (`reef machines rotate-certificate`, `reef machines upgrade`)
 * share on the command line: a target as for tasks or `--all`, and `--max-parallel`.
 */
export interface FleetOpts extends TargetOpts {
  all?: boolean;
  maxParallel?: string;
}

/** Adds `--all` and `--max-parallel` (the target options come from addTargetOptions). */
export function addFleetOptions(command: Command, doing: string): Command {
  return command
    .option('--all', 'every registered machine')
    .option('--max-parallel <n>', `how many machines ${doing} at once (default ${DEFAULT_FLEET_MAX_PARALLEL})`);
}

/** The FleetTarget and maxParallel the options say; a worker pool means every worker in it. */
export function fleetOf(opts: FleetOpts): { target: FleetTarget; maxParallel?: number } {
  let target: FleetTarget;
  if (opts.all) {
    if (opts.environment !== undefined || opts.workerPool !== undefined || opts.machine?.length || opts.role !== undefined) {
      throw new ReefError('REEF_INVALID_ARGUMENT', '--all targets every machine: use it without --environment, --role, --worker-pool or --machine.');
    }
    target = { all: true };
  } else {
    target = targetOf(opts);
  }
  return { target, ...(opts.maxParallel !== undefined ? { maxParallel: positiveInteger(opts.maxParallel, '--max-parallel') } : {}) };
}

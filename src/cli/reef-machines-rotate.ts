import type { Command } from 'commander';
import type { FleetTarget } from '../api/contract.js';
import { DEFAULT_FLEET_MAX_PARALLEL } from '../api/fleet.js';
import { ReefError } from '../errors.js';
import { runAction } from './common.js';
import { addConnectionOptions, connect } from './reef-connection.js';
import { addTargetOptions, FOLLOW_HELP, startTask, targetOf, validRequest, type FollowOpts, type TargetOpts } from './reef-tasks.js';

/**
 * `reef machines rotate-certificate`: a rotate-machine-certificate task (POST /api/tasks),
 * docs/operations.md "Rotating Tentacle certificates".
 */
export function registerRotateCertificate(machines: Command): void {
  addConnectionOptions(
    addTargetOptions(
      machines
        .command('rotate-certificate')
        .description("give each Tentacle a new certificate over its pinned link and revoke the old one (a task; a worker pool means all its workers)"),
    )
      .option('--all', 'every registered machine')
      .option('--max-parallel <n>', `how many machines rotate at once (default ${DEFAULT_FLEET_MAX_PARALLEL})`)
      .option('--follow', FOLLOW_HELP),
  ).action(
    runAction(async (opts: FollowOpts & TargetOpts & { all?: boolean; maxParallel?: string }) => {
      const target: FleetTarget = opts.all ? allOnly(opts) : targetOf(opts);
      const maxParallel = opts.maxParallel === undefined ? undefined : wholeNumber(opts.maxParallel, '--max-parallel');
      const request = await validRequest({ kind: 'rotate-machine-certificate', target, ...(maxParallel !== undefined ? { maxParallel } : {}) });
      await startTask(await connect(opts), request, opts);
    }),
  );
}

function allOnly(opts: TargetOpts): { all: true } {
  if (opts.environment !== undefined || opts.workerPool !== undefined || opts.machine?.length || opts.role !== undefined) {
    throw new ReefError('REEF_INVALID_ARGUMENT', '--all targets every machine: use it without --environment, --role, --worker-pool or --machine.');
  }
  return { all: true };
}

/** A whole number as typed ("10"); anything else is refused here, the range by the contract. */
function wholeNumber(value: string, option: string): number {
  if (!/^\d+$/.test(value.trim())) throw new ReefError('REEF_INVALID_ARGUMENT', `${option} must be a whole number, not "${value}".`);
  return Number(value.trim());
}

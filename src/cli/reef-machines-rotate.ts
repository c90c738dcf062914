import type { Command } from 'commander';
import { runAction } from './common.js';
import { addFleetOptions, fleetOf, type FleetOpts } from './fleet-options.js';
import { addConnectionOptions, connect } from './reef-connection.js';
import { addTargetOptions, FOLLOW_HELP, startTask, validRequest, type FollowOpts } from './reef-tasks.js';

/**
 * `reef machines rotate-certificate`: a rotate-machine-certificate task (POST /api/tasks),
 * docs/operations.md "Rotating Tentacle certificates".
 */
export function registerRotateCertificate(machines: Command): void {
  addConnectionOptions(
    addFleetOptions(
      addTargetOptions(
        machines
          .command('rotate-certificate')
          .description("give each Tentacle a new certificate over its pinned link and revoke the old one (a task; a worker pool means all its workers)"),
      ),
      'rotate',
    ).option('--follow', FOLLOW_HELP),
  ).action(
    runAction(async (opts: FollowOpts & FleetOpts) => {
      const request = await validRequest({ kind: 'rotate-machine-certificate', ...fleetOf(opts) });
      await startTask(await connect(opts), request, opts);
    }),
  );
}

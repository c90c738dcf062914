import type { Command } from 'commander';
import type { CreateTaskRequest } from '../api/contract.js';
import { runAction } from './common.js';
import { addFleetOptions, fleetOf, type FleetOpts } from './fleet-options.js';
import { addConnectionOptions, connect } from './reef-connection.js';
import { addTargetOptions, FOLLOW_HELP, startTask, validRequest, type FollowOpts } from './reef-tasks.js';
import { parseDuration } from './reef-tokens.js';

/**
 * `reef machines upgrade`: an upgrade-tentacle task (POST /api/tasks) on a fleet target (as
 * for other tasks, but a worker pool means all its workers; or --all). docs/operations.md,
 * "Upgrading Tentacles".
 */
export function registerUpgradeCommand(machines: Command): void {
  addConnectionOptions(
    addFleetOptions(
      addTargetOptions(
        machines
          .command('upgrade')
          .description("upgrade the machines' Tentacles to a version the server distributes (its downloads folder), rolling back by itself on failure (a worker pool means all its workers)"),
      ),
      'upgrade',
    )
      .option('--version <version>', "the version to install (default: the newest the server has for each machine's architecture)")
      .option('--rollback-after <duration>', 'how long the new version has to reach the server before the Tentacle goes back to the previous one (default 2m)')
      .option('--follow', FOLLOW_HELP),
  ).action(
    runAction(async (opts: FollowOpts & FleetOpts & { version?: string; rollbackAfter?: string }) => {
      // Everything the command line alone can get wrong is said before the server is asked.
      const request: CreateTaskRequest = {
        kind: 'upgrade-tentacle',
        ...fleetOf(opts),
        ...(opts.version !== undefined ? { version: opts.version } : {}),
        ...(opts.rollbackAfter !== undefined ? { rollbackAfterSeconds: parseDuration(opts.rollbackAfter, '--rollback-after', 10, 86_400) } : {}),
      };
      const valid = await validRequest(request);
      await startTask(await connect(opts), valid, opts);
    }),
  );
}

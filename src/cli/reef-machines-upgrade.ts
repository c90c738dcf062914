import type { Command } from 'commander';
import type { CreateTaskRequest, MachineView, TaskTarget } from '../api/contract.js';
import { ReefError } from '../errors.js';
import { runAction } from './common.js';
import { addConnectionOptions, connect, itemsOf } from './reef-connection.js';
import { addTargetOptions, FOLLOW_HELP, positiveInteger, startTask, targetOf, validRequest, type FollowOpts, type TargetOpts } from './reef-tasks.js';
import { parseDuration } from './reef-tokens.js';

/**
 * `reef machines upgrade`: an upgrade-tentacle task (POST /api/tasks) on the machines
 * targeted as for other tasks, or on every machine with --all (the CLI lists them: GET
 * /api/machines). docs/operations.md, "Upgrading Tentacles".
 */
export function registerUpgradeCommand(machines: Command): void {
  addConnectionOptions(
    addTargetOptions(
      machines
        .command('upgrade')
        .description("upgrade the machines' Tentacles to a version the server distributes (its downloads folder), rolling back by itself on failure")
        .option('--all', 'every machine registered')
        .option('--version <version>', "the version to install (default: the newest the server has for each machine's architecture)")
        .option('--max-parallel <n>', 'machines upgraded at once (default 10)')
        .option('--rollback-after <duration>', 'how long the new version has to reach the server before the Tentacle goes back to the previous one (default 2m)')
        .option('--follow', FOLLOW_HELP),
    ),
  ).action(
    runAction(async (opts: FollowOpts & TargetOpts & { all?: boolean; version?: string; maxParallel?: string; rollbackAfter?: string }) => {
      // Everything the command line alone can get wrong is said before the server is asked.
      const options = {
        ...(opts.version !== undefined ? { version: opts.version } : {}),
        ...(opts.maxParallel !== undefined ? { maxParallel: positiveInteger(opts.maxParallel, '--max-parallel') } : {}),
        ...(opts.rollbackAfter !== undefined ? { rollbackAfterSeconds: parseDuration(opts.rollbackAfter, '--rollback-after', 10, 86_400) } : {}),
      };
      const named = opts.all ? undefined : targetOf(opts);
      if (opts.all) onlyAll(opts);
      const api = await connect(opts);
      const request: CreateTaskRequest = { kind: 'upgrade-tentacle', target: named ?? (await everyMachine(api)), ...options };
      await startTask(api, await validRequest(request), opts);
    }),
  );
}

function onlyAll(opts: TargetOpts): void {
  if (opts.environment !== undefined || opts.workerPool !== undefined || (opts.machine?.length ?? 0) > 0 || opts.role !== undefined) {
    throw new ReefError('REEF_INVALID_ARGUMENT', 'Use --all alone, or target with --environment, --worker-pool or --machine.');
  }
}

/** Every registered machine (that the caller may see), by name. */
async function everyMachine(api: Awaited<ReturnType<typeof connect>>): Promise<TaskTarget> {
  const names = itemsOf<MachineView>(await api.json('GET', '/api/machines')).map((m) => m.name);
  if (names.length === 0) throw new ReefError('REEF_NO_MACHINES', 'No machine is registered.');
  return { machines: names };
}

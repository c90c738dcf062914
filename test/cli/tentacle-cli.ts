import { TENTACLE_BIN } from '../support/built.js';
import { removeTempDir, runTracked, trackedTempDir, type RunResult } from '../support/processes.js';

/** Runs the real `tentacle` CLI (bin/tentacle.js, compiled) the way a user would, against a private root. */

export const tentacleBin = TENTACLE_BIN;

export interface TentacleCli {
  root: string;
  run(args: string[], env?: NodeJS.ProcessEnv): Promise<RunResult>;
  /** Like run, but fails the test with the CLI's stderr when the exit code is not 0. */
  ok(args: string[], env?: NodeJS.ProcessEnv): Promise<RunResult>;
  close(): Promise<void>;
}

export async function tentacleCli(): Promise<TentacleCli> {
  const root = await trackedTempDir('reef-tentacle-test-');
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runTracked(process.execPath, [tentacleBin, ...args], {
      env: {
        ...process.env,
        REEF_TENTACLE_ROOT: root,
        REEF_TENTACLE_SERVICE_MODE: 'supervised',
        REEF_LOG_LEVEL: 'info',
        REEF_DEBUG: '',
        ...env,
      },
      timeoutMs: 30_000,
    });
  return {
    root,
    run,
    async ok(args, env) {
      const result = await run(args, env);
      if (result.code !== 0) {
        throw new Error(`tentacle ${args.join(' ')} exited ${result.code}:\n${result.stderr}`);
      }
      return result;
    },
    close: () => removeTempDir(root),
  };
}

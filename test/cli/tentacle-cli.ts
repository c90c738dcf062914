import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Runs the real `tentacle` CLI (bin/tentacle.js) the way a user would, against a private root. */

export const tentacleBin = fileURLToPath(new URL('../../bin/tentacle.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface TentacleCli {
  root: string;
  run(args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult>;
  /** Like run, but fails the test with the CLI's stderr when the exit code is not 0. */
  ok(args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult>;
  close(): Promise<void>;
}

export async function tentacleCli(): Promise<TentacleCli> {
  const root = await mkdtemp(join(tmpdir(), 'reef-tentacle-test-'));
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    new Promise<CliResult>((resolve) => {
      execFile(
        process.execPath,
        [tentacleBin, ...args],
        {
          env: {
            ...process.env,
            REEF_TENTACLE_ROOT: root,
            REEF_TENTACLE_SERVICE_MODE: 'supervised',
            REEF_LOG_LEVEL: 'info',
            REEF_DEBUG: '',
            ...env,
          },
          timeout: 30_000,
        },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
          resolve({ code, stdout, stderr });
        },
      );
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
    close: () => rm(root, { recursive: true, force: true }),
  };
}

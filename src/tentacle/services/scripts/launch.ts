/**
 * Process launch: which interpreter runs a script of each syntax, and the detached `sh`
 * wrapper that runs it with stdout and stderr going to files and records its exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { ScriptSyntax, StartScriptArgs } from '../../../api/tentacle/index.js';
import { writeFileAtomic } from '../../../durable-fs.js';
import { ReefError } from '../../../errors.js';
import type { Logger } from '../../../logging.js';
import { processStartTime } from '../processes.js';
import { detectShells, type ShellPaths } from '../shells.js';
import { FILE, statOrNull } from './layout.js';
import { Run } from './run.js';

/** $1 is the exit file; the rest is the command. The trap keeps the wrapper alive to write it. */
const WRAPPER = [
  'trap : TERM INT HUP',
  'f=$1; shift',
  '"$@"',
  'c=$?',
  'printf "%s\\n" "$c" > "$f.tmp" && mv -f "$f.tmp" "$f"',
  'exit "$c"',
].join('\n');

/** How each syntax runs: a syntax added to the contract does not compile until it has a line here. */
const INTERPRETERS: Record<ScriptSyntax, { shell: keyof ShellPaths; file: string; command: (interpreter: string, script: string) => string[] }> = {
  bash: { shell: 'bash', file: 'script.sh', command: (interpreter, script) => [interpreter, script] },
  sh: { shell: 'sh', file: 'script.sh', command: (interpreter, script) => [interpreter, script] },
  powershell: { shell: 'pwsh', file: 'script.ps1', command: (interpreter, script) => [interpreter, '-NoProfile', '-NonInteractive', '-File', script] },
};

/** What launch() needs, found before the ticket is claimed so a refusal leaves no trace. */
export interface LaunchPlan {
  wrapperShell: string;
  interpreter: string;
}

/** The interpreters for this request, or REEF_SHELL_UNAVAILABLE / REEF_BAD_CWD. */
export async function planLaunch(request: StartScriptArgs, shellOverrides: Partial<ShellPaths>): Promise<LaunchPlan> {
  const shells = { ...(await detectShells()), ...shellOverrides };
  const wrapperShell = shells.sh;
  const { shell } = INTERPRETERS[request.syntax];
  const interpreter = shells[shell];
  if (!interpreter || !wrapperShell) {
    const missing = !interpreter ? shell : 'sh';
    throw new ReefError(
      'REEF_SHELL_UNAVAILABLE',
      `Cannot run a ${request.syntax} script: "${missing}" was not found on this Tentacle's PATH. ` +
        `Install it (then restart the Tentacle), or send the script in a syntax listed in the Tentacle's capabilities.`,
    );
  }
  if (request.cwd !== undefined) {
    const cwdStat = await statOrNull(request.cwd);
    if (!cwdStat?.isDirectory()) {
      throw new ReefError('REEF_BAD_CWD', `The working directory ${request.cwd} does not exist on this Tentacle (or is not a directory).`);
    }
  }
  return { wrapperShell, interpreter };
}

/**
 * Writes the script into its claimed ticket directory and starts it under the wrapper,
 * detached (its own session and process group). Resolves with its Run: with meta and
 * child when it started, with `gone` when it could not.
 */
export async function launch(
  request: StartScriptArgs,
  dir: string,
  plan: LaunchPlan,
  options: { logger: Logger; onExit: (run: Run, code: number | null, signal: NodeJS.Signals | null) => void },
): Promise<Run> {
  const { ticket } = request;
  const { file, command } = INTERPRETERS[request.syntax];
  const scriptFile = path.join(dir, file);
  await writeFileAtomic(scriptFile, request.body);
  const cwd = request.cwd ?? path.join(dir, FILE.work);
  if (request.cwd === undefined) await mkdir(cwd);

  const run = new Run(ticket, dir);
  const out = openSync(run.file(FILE.stdout), 'a');
  const err = openSync(run.file(FILE.stderr), 'a');
  let child: ChildProcess;
  try {
    child = spawn(plan.wrapperShell, ['-c', WRAPPER, 'reef-script', run.file(FILE.exit), ...command(plan.interpreter, scriptFile), ...(request.args ?? [])], {
      cwd,
      env: { ...process.env, ...request.env },
      detached: true,
      stdio: ['ignore', out, err],
    });
  } finally {
    closeSync(out);
    closeSync(err);
  }
  const spawnError = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', resolve);
  });

  if (spawnError || child.pid === undefined) {
    const message = `Could not start the script: ${spawnError?.message ?? 'no process id'}`;
    run.gone = { orphaned: false, message, error: message };
    options.logger.error({ ticket, err: spawnError }, 'script failed to start');
    return run;
  }
  const startedAt = Date.now();
  run.meta = {
    pid: child.pid,
    pidStartTime: await processStartTime(child.pid),
    startedAt: new Date(startedAt).toISOString(),
    ...(request.timeoutMs !== undefined ? { timeoutMs: request.timeoutMs, deadline: startedAt + request.timeoutMs } : {}),
  };
  await writeFileAtomic(run.file(FILE.meta), JSON.stringify(run.meta));
  run.child = child;
  child.once('exit', (code, signal) => options.onExit(run, code, signal));
  options.logger.info({ ticket, pid: child.pid, syntax: request.syntax }, 'script started');
  return run;
}

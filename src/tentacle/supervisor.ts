import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ReefError } from '../errors.js';
import type { Logger } from '../logging.js';
import { loadConfig } from './config.js';
import { homeFiles, SUPERVISOR_MARKER, tentacleCommand, tentacleRoot } from './paths.js';
import { claimPidFile, releasePidFile } from './pid-file.js';

/**
 * The supervised service, for machines without systemd: one small node process per instance
 * (`tentacle supervise --instance N`, started detached by `tentacle service --start`) that
 * runs `tentacle agent --instance N`, appends the agent's stdout and stderr to
 * `<home>/logs/tentacle.log`, and restarts it with exponential backoff whenever it exits
 * non-zero or is killed. An agent exiting 0 stopped on purpose, so the supervisor stops too.
 * SIGTERM/SIGINT stop the agent (SIGTERM, SIGKILL after a grace period) and then the
 * supervisor, which removes `<home>/tentacle.pid` on the way out.
 */

// Defined in paths.ts, which the CLI loads anyway; re-exported for the service code.
export { SUPERVISOR_MARKER } from './paths.js';

/**
 * Test-only: a JSON array of strings, the command to supervise instead of the real agent
 * (e.g. `["/usr/bin/node","/tmp/fake-agent.js"]`). Lets tests exercise crash/restart
 * without a server. Not for production use.
 */
export const AGENT_CMD_ENV = 'REEF_TENTACLE_AGENT_CMD';

export interface RestartPolicy {
  /** Delay before the first restart; doubles per consecutive crash. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** An agent that stayed up this long counts as healthy: the next crash starts the backoff over. */
  healthyAfterMs: number;
  /** How long the agent gets to exit after SIGTERM before SIGKILL. */
  stopGraceMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialDelayMs: 500,
  maxDelayMs: 60_000,
  healthyAfterMs: 60_000,
  stopGraceMs: 10_000,
};

/**
 * The agent's exit code when it restarts into a new executable after a self-upgrade
 * (src/tentacle/upgrade/): restarted at once, without counting as a crash. systemd
 * restarts any exit (Restart=always).
 */
export const UPGRADE_RESTART_EXIT_CODE = 75;

/** Sent by the upgrade watcher after a rollback: restart the agent now, whatever the backoff. */
export const RESTART_NOW_SIGNAL = 'SIGUSR2';

/** Rotated (once, to tentacle.log.1) when the agent (re)starts and the log has grown past this. */
const MAX_LOG_BYTES = 50 * 1024 * 1024;

export function restartDelay(consecutiveCrashes: number, policy: RestartPolicy, random = Math.random): number {
  const base = Math.min(policy.initialDelayMs * 2 ** Math.max(0, consecutiveCrashes - 1), policy.maxDelayMs);
  return Math.round(base * (0.8 + 0.4 * random())); // jitter, so many instances do not restart in step
}

export function agentCommand(instanceName: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const override = env[AGENT_CMD_ENV];
  if (override) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(override);
    } catch {
      parsed = null;
    }
    if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((a) => typeof a === 'string')) {
      throw new ReefError('REEF_CONFIG_INVALID', `${AGENT_CMD_ENV} must be a JSON array of strings, e.g. ["node","agent.js"].`);
    }
    return parsed as string[];
  }
  return [...tentacleCommand, 'agent', '--instance', instanceName];
}

/** Set for the agent; also how `service --start` recognises an agent orphaned by a killed supervisor. */
export function agentEnv(root: string, instanceName: string): Record<string, string> {
  return { REEF_TENTACLE_ROOT: root, REEF_TENTACLE_INSTANCE: instanceName };
}

export interface SupervisorOptions {
  root?: string;
  policy?: Partial<RestartPolicy>;
  logger?: Logger;
}

/** Runs until stopped by a signal or until the agent exits 0. */
export async function runSupervisor(instanceName: string, options: SupervisorOptions = {}): Promise<void> {
  const root = options.root ?? tentacleRoot();
  const policy = { ...DEFAULT_RESTART_POLICY, ...options.policy };
  // pino loads here, not with the CLI: every other tentacle command starts faster without it.
  const logger = options.logger ?? (await import('../logging.js')).createLogger('tentacle-supervisor');
  const config = await loadConfig(instanceName, root);
  const command = agentCommand(instanceName);
  const pidPath = join(config.home, homeFiles.pid);
  const logPath = join(config.home, homeFiles.log);
  const agentPidPath = join(config.home, homeFiles.agentPid);
  await mkdir(join(config.home, homeFiles.logs), { recursive: true, mode: 0o700 });
  await claimPidFile(pidPath, SUPERVISOR_MARKER);

  let child: ChildProcess | null = null;
  let stopping = false;
  let crashes = 0;
  let restartTimer: NodeJS.Timeout | null = null;
  let restartNow = false;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));

  const cleanup = async () => {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    process.off(RESTART_NOW_SIGNAL, restart);
    await releasePidFile(pidPath);
    finish();
  };

  const startAgent = () => {
    restartTimer = null;
    if (stopping) return;
    rotateLog(logPath);
    const logFd = openSync(logPath, 'a', 0o600);
    const startedAt = Date.now();
    const [file, ...args] = command as [string, ...string[]];
    const proc = spawn(file, args, {
      cwd: config.home,
      stdio: ['ignore', logFd, logFd],
      env: { ...process.env, ...agentEnv(root, instanceName) },
    });
    if (proc.pid !== undefined) writeFileSync(agentPidPath, `${proc.pid}\n`);
    child = proc;
    closeSync(logFd); // the child holds its own copy
    logger.info({ instance: instanceName, agentPid: proc.pid, command }, 'agent started');
    let ended = false;
    const onEnd = (code: number | null, signal: NodeJS.Signals | null) => {
      if (ended) return; // a failed spawn may report both 'error' and 'exit'
      ended = true;
      child = null;
      rmSync(agentPidPath, { force: true });
      if (stopping) {
        logger.info({ code, signal }, 'agent stopped; supervisor exiting');
        void cleanup();
        return;
      }
      if (code === 0) {
        logger.info('agent exited with code 0; supervisor exiting');
        void cleanup();
        return;
      }
      if (code === UPGRADE_RESTART_EXIT_CODE || restartNow) {
        restartNow = false;
        crashes = 0;
        logger.info({ code, signal }, 'agent restarting (upgrade or rollback)');
        restartTimer = setTimeout(startAgent, 0);
        return;
      }
      crashes = Date.now() - startedAt >= policy.healthyAfterMs ? 1 : crashes + 1;
      const delay = restartDelay(crashes, policy);
      logger.warn({ code, signal, crashes, restartInMs: delay }, 'agent exited; restarting');
      restartTimer = setTimeout(startAgent, delay);
    };
    proc.once('exit', onEnd);
    proc.once('error', (err) => {
      logger.error({ err: err.message, command }, 'agent could not be started');
      if (proc.pid === undefined) onEnd(null, null);
    });
  };

  function stop(signal: NodeJS.Signals) {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'supervisor stopping');
    if (restartTimer) {
      clearTimeout(restartTimer);
      restartTimer = null;
    }
    const running: ChildProcess | null = child;
    if (!running) {
      void cleanup();
      return;
    }
    running.kill('SIGTERM');
    const kill = setTimeout(() => {
      logger.warn({ graceMs: policy.stopGraceMs }, 'agent ignored SIGTERM; killing it');
      running.kill('SIGKILL');
    }, policy.stopGraceMs);
    kill.unref();
  }

  /** After a rollback: the executable was put back, so start it now rather than after the crash backoff. */
  function restart() {
    if (stopping) return;
    crashes = 0;
    if (restartTimer) {
      clearTimeout(restartTimer);
      startAgent();
    } else if (child) {
      restartNow = true;
      child.kill('SIGKILL');
    }
  }

  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on(RESTART_NOW_SIGNAL, restart);
  logger.info({ instance: instanceName, log: logPath }, 'supervisor started');
  startAgent();
  await done;
}

function rotateLog(logPath: string): void {
  try {
    if (statSync(logPath).size > MAX_LOG_BYTES) renameSync(logPath, `${logPath}.1`);
  } catch {
    /* no log yet */
  }
}

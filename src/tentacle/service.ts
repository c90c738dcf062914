import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReefError } from '../errors.js';
import { writeFileAtomic } from '../durable-fs.js';
import { installUnit, SYSTEMD_UNIT_DIR, systemctl, systemdIsRunning, uninstallUnit, unitIsActive } from '../systemd/systemctl.js';
import type { TentacleConfig } from './config.js';
import { homeFiles, tentacleCommand, tentacleRoot } from './paths.js';
import { isProcessAlive, processHasEnv, readPidFile } from './pid-file.js';
import { renderTentacleUnit, tentacleUnitName } from './service-unit.js';
import { agentEnv, SUPERVISOR_MARKER } from './supervisor.js';

/**
 * `tentacle service`: runs an instance's agent in the background, two ways.
 *
 * - systemd (when `/run/systemd/system` exists): `--install` writes
 *   `/etc/systemd/system/reef-tentacle-<instance>.service` (service-unit.ts; `--print` shows
 *   it without installing anything) and enables it; start, stop, restart and uninstall go
 *   through systemctl. systemd restarts the agent and starts it at boot.
 *
 * - supervised (anywhere else: containers, minimal hosts): `--install` only writes the
 *   marker `<home>/service.json` saying the service is installed (there is no init system
 *   to hand it to, so nothing starts at boot; add `tentacle service --start` to your boot
 *   scripts). `--start` refuses without that marker, as with systemd, so a service that
 *   was deliberately uninstalled is not started by a stray script. `--start` spawns a
 *   detached supervisor (see supervisor.ts) that writes `<home>/tentacle.pid` and
 *   `<home>/logs/tentacle.log`; `--stop` sends it SIGTERM, waits, then SIGKILLs its process
 *   group; stale pid files (dead or reused pids) are detected and removed.
 *
 * `REEF_TENTACLE_SERVICE_MODE=systemd|supervised` overrides the detection.
 */

export type ServiceManager = 'systemd' | 'supervised';

export interface ServiceActions {
  install?: boolean;
  uninstall?: boolean;
  start?: boolean;
  stop?: boolean;
  restart?: boolean;
}

export interface ServiceStatus {
  manager: ServiceManager;
  installed: boolean;
  running: boolean;
  /** Supervisor pid (supervised mode, when running). */
  pid?: number;
}

export interface ServiceOptions {
  root?: string;
  manager?: ServiceManager;
  /** How long --stop waits for the supervisor before SIGKILL. */
  stopTimeoutMs?: number;
  /** How long --start waits for the supervisor to write its pid file. */
  startTimeoutMs?: number;
  /** Where systemd units go (tests). */
  unitDir?: string;
}

export function detectServiceManager(env: NodeJS.ProcessEnv = process.env): ServiceManager {
  const forced = env.REEF_TENTACLE_SERVICE_MODE?.trim();
  if (forced) {
    if (forced !== 'systemd' && forced !== 'supervised') {
      throw new ReefError('REEF_CONFIG_INVALID', `REEF_TENTACLE_SERVICE_MODE must be "systemd" or "supervised", not "${forced}".`);
    }
    return forced;
  }
  return systemdIsRunning() ? 'systemd' : 'supervised';
}

/** The unit `--install` writes for this instance (`tentacle service --print` shows it). */
export function systemdUnitText(config: TentacleConfig, options: Pick<ServiceOptions, 'root'> = {}): string {
  return renderTentacleUnit({ instance: config.instance, root: options.root ?? tentacleRoot(), home: config.home });
}

/** Runs the requested actions in a fixed order (stop, uninstall, install, start), returning one line per thing done. */
export async function runServiceActions(config: TentacleConfig, actions: ServiceActions, options: ServiceOptions = {}): Promise<string[]> {
  if (!actions.install && !actions.uninstall && !actions.start && !actions.stop && !actions.restart) {
    throw new ReefError('REEF_INVALID_ARGUMENT', 'Nothing to do: pass one or more of --install, --uninstall, --start, --stop, --restart (or --print to see the systemd unit).');
  }
  if (actions.install && actions.uninstall) {
    throw new ReefError('REEF_INVALID_ARGUMENT', '--install and --uninstall cannot be combined.');
  }
  const service = serviceFor(config, options);
  const done: string[] = [];
  if (actions.stop || actions.uninstall) done.push(await service.stop());
  if (actions.uninstall) done.push(await service.uninstall());
  if (actions.install) done.push(await service.install());
  if (actions.restart && !actions.start) {
    if (!(actions.stop || actions.uninstall)) done.push(await service.stop());
    done.push(await service.start());
  } else if (actions.start) {
    done.push(await service.start());
  }
  return done;
}

export async function serviceStatus(config: TentacleConfig, options: ServiceOptions = {}): Promise<ServiceStatus> {
  return serviceFor(config, options).status();
}

interface ServiceDriver {
  install(): Promise<string>;
  uninstall(): Promise<string>;
  start(): Promise<string>;
  stop(): Promise<string>;
  status(): Promise<ServiceStatus>;
}

function serviceFor(config: TentacleConfig, options: ServiceOptions): ServiceDriver {
  const manager = options.manager ?? detectServiceManager();
  return manager === 'systemd' ? systemdService(config, options) : supervisedService(config, options);
}

// ---------------------------------------------------------------- systemd

function systemdService(config: TentacleConfig, options: ServiceOptions): ServiceDriver {
  const unit = tentacleUnitName(config.instance);
  const unitDir = options.unitDir ?? SYSTEMD_UNIT_DIR;
  const unitPath = join(unitDir, unit);
  const installed = () => existsSync(unitPath);
  const requireInstalled = () => {
    if (!installed()) {
      throw new ReefError('REEF_SERVICE_NOT_INSTALLED', `The ${unit} unit is not installed; run "tentacle service --instance ${config.instance} --install" first.`);
    }
  };
  return {
    async install() {
      const text = systemdUnitText(config, options); // a path no unit can hold fails here, before anything is written
      if (process.getuid?.() !== 0) {
        throw new ReefError('REEF_SERVICE_NEEDS_ROOT', `Installing ${unit} writes to ${unitDir}; run the command as root (sudo), or see the unit with --print.`);
      }
      await installUnit(unit, text, unitDir);
      return `Installed and enabled ${unitPath}.`;
    },
    async uninstall() {
      return (await uninstallUnit(unit, unitDir)) ? `Removed ${unitPath}.` : `${unit} was not installed.`;
    },
    async start() {
      requireInstalled();
      systemctl('start', unit);
      return `Started ${unit}.`;
    },
    async stop() {
      if (!installed()) return `${unit} is not installed; nothing to stop.`;
      systemctl('stop', unit);
      return `Stopped ${unit}.`;
    },
    async status() {
      const running = installed() && unitIsActive(unit);
      return { manager: 'systemd', installed: installed(), running };
    },
  };
}

// ---------------------------------------------------------------- supervised

interface ServiceMarker {
  manager: 'supervised';
  instance: string;
  installedAt: string;
}

function supervisedService(config: TentacleConfig, options: ServiceOptions): ServiceDriver {
  const markerPath = join(config.home, homeFiles.serviceMarker);
  const pidPath = join(config.home, homeFiles.pid);
  const logPath = join(config.home, homeFiles.log);
  const root = options.root ?? tentacleRoot();

  const installed = async () => {
    try {
      const marker = JSON.parse(await readFile(markerPath, 'utf8')) as Partial<ServiceMarker>;
      return marker.manager === 'supervised';
    } catch {
      return false;
    }
  };

  /** The supervisor's pid if it is running; a stale pid file is removed on the way. */
  const runningPid = async (): Promise<number | null> => {
    const pid = await readPidFile(pidPath);
    if (pid === null) return null;
    if (isProcessAlive(pid, SUPERVISOR_MARKER)) return pid;
    await rm(pidPath, { force: true });
    return null;
  };

  const start = async (): Promise<string> => {
    if (!(await installed())) {
      throw new ReefError(
        'REEF_SERVICE_NOT_INSTALLED',
        `The service for instance "${config.instance}" is not installed; run "tentacle service --instance ${config.instance} --install --start".`,
      );
    }
    const existing = await runningPid();
    if (existing !== null) return `Already running (supervisor pid ${existing}).`;
    const orphan = await stopOrphanedAgent();
    const logFd = openSync(logPath, 'a', 0o600);
    // detached: its own session and process group, so it outlives this command and --stop can signal the whole group.
    const [command, ...commandArgs] = tentacleCommand as [string, ...string[]];
    const supervisor = spawn(command, [...commandArgs, SUPERVISOR_MARKER, '--instance', config.instance], {
      cwd: config.home,
      detached: true,
      stdio: ['ignore', logFd, logFd],
      env: { ...process.env, REEF_TENTACLE_ROOT: root },
    });
    closeSync(logFd);
    let exited: number | null | undefined;
    supervisor.once('exit', (code) => (exited = code));
    supervisor.once('error', () => (exited = -1));
    supervisor.unref();
    const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
    while (Date.now() < deadline) {
      if ((await readPidFile(pidPath)) === supervisor.pid) {
        return `${orphan}Started (supervisor pid ${supervisor.pid}, log ${logPath}).`;
      }
      if (exited !== undefined) break;
      await sleep(50);
    }
    if (exited === undefined) supervisor.kill('SIGKILL');
    throw new ReefError(
      'REEF_SERVICE_START_FAILED',
      `The supervisor for instance "${config.instance}" did not start${exited !== undefined ? ` (exit code ${exited})` : ' in time'}; see ${logPath}.`,
    );
  };

  /**
   * A supervisor killed with SIGKILL (OOM killer, kill -9) leaves its agent running; starting
   * a second one would run two agents for one identity. The agent is recognised by its
   * recorded pid and the environment the supervisor gave it, never by pid alone.
   */
  const stopOrphanedAgent = async (): Promise<string> => {
    const agentPidPath = join(config.home, homeFiles.agentPid);
    const pid = await readPidFile(agentPidPath);
    if (pid === null) return '';
    const env = Object.entries(agentEnv(root, config.instance)).map(([k, v]) => `${k}=${v}`);
    if (!isProcessAlive(pid) || !processHasEnv(pid, env)) {
      await rm(agentPidPath, { force: true });
      return '';
    }
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && isProcessAlive(pid)) await sleep(50);
    if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
    await rm(agentPidPath, { force: true });
    return `Stopped agent process ${pid}, left running by a supervisor that had died. `;
  };

  const stop = async (): Promise<string> => {
    const pid = await runningPid();
    if (pid === null) return 'Not running.';
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + (options.stopTimeoutMs ?? 20_000);
    while (Date.now() < deadline && isProcessAlive(pid, SUPERVISOR_MARKER)) await sleep(50);
    let forced = false;
    if (isProcessAlive(pid, SUPERVISOR_MARKER)) {
      forced = true;
      // The supervisor leads its own process group (detached), so this takes the agent down with it.
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      const killDeadline = Date.now() + 5_000;
      while (Date.now() < killDeadline && isProcessAlive(pid, SUPERVISOR_MARKER)) await sleep(50);
    }
    if ((await readPidFile(pidPath)) === pid) await rm(pidPath, { force: true });
    return forced ? `Stopped (supervisor pid ${pid} did not exit in time and was killed).` : `Stopped (supervisor pid ${pid}).`;
  };

  return {
    async install() {
      const marker: ServiceMarker = { manager: 'supervised', instance: config.instance, installedAt: new Date().toISOString() };
      await writeFileAtomic(markerPath, JSON.stringify(marker, null, 2) + '\n', { mode: 0o600 });
      return 'Installed as a supervised background process (no systemd on this machine, so it does not start at boot by itself).';
    },
    async uninstall() {
      if (!(await installed())) return 'The service was not installed.';
      await rm(markerPath, { force: true });
      return 'Uninstalled.';
    },
    start,
    stop,
    async status() {
      const pid = await runningPid();
      return { manager: 'supervised', installed: await installed(), running: pid !== null, ...(pid !== null ? { pid } : {}) };
    },
  };
}


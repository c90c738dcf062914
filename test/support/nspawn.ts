/**
 * A booted systemd for tests, on a machine whose PID 1 is not systemd: a minimal Debian
 * bookworm tree (debootstrap from Debian's mirror) booted with `systemd-nspawn --boot`.
 *
 * - No D-Bus or machined on the host, hence `--register=no --keep-unit`.
 * - `--private-network`: the container has its own loopback, so its services may use
 *   fixed ports without touching the host's.
 * - `--volatile=overlay`: the tree stays as it was; everything the container writes lives
 *   in memory and is gone when it stops. REEF_TEST_DEBIAN_TREE may name a prepared tree
 *   (debootstrap --variant=minbase --include=systemd,systemd-sysv bookworm DIR) to skip
 *   the download; without it each run builds one in its temp folder (about 1.5 minutes).
 * - Commands run inside through `nsenter` into the container's init, with a clean
 *   environment.
 *
 * Teardown: SIGTERM to systemd-nspawn powers the container off; if that takes too long,
 * its init is killed (which ends every process in its PID namespace). Mounts left under the
 * temp folder by an interrupted debootstrap are unmounted before the folder is removed.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runTracked, spawnTracked, stopProcess, trackedTempDir, type RunResult } from './processes.js';
import { isProcessAlive } from '../../src/tentacle/pid-file.js';

export const DEBIAN_MIRROR = 'http://deb.debian.org/debian';

/** What the host needs, with the Debian package that brings it. */
const TOOLS: Record<string, string> = {
  'systemd-nspawn': 'systemd-container',
  debootstrap: 'debootstrap',
  nsenter: 'util-linux',
  'dpkg-deb': 'dpkg',
};

/** Why a booted container cannot be had here, or undefined when it can. */
export function nspawnUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'systemd-nspawn needs root';
  const missing = Object.entries(TOOLS).filter(([tool]) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
  if (missing.length > 0) return `missing ${missing.map(([tool, pkg]) => `${tool} (apt-get install ${pkg})`).join(', ')}`;
  return undefined;
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((path): path is string => path !== undefined && path.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

function unmountUnder(dir: string): void {
  for (const path of mountsUnder(dir)) spawnSync('umount', ['--lazy', path]);
}

/** A Debian tree to boot: REEF_TEST_DEBIAN_TREE, or a fresh one in a temp folder. */
export async function debianTree(): Promise<string> {
  const prepared = process.env.REEF_TEST_DEBIAN_TREE;
  if (prepared) {
    if (!existsSync(join(prepared, 'usr/lib/systemd/systemd'))) throw new Error(`REEF_TEST_DEBIAN_TREE=${prepared} has no systemd in it`);
    return prepared;
  }
  const base = await trackedTempDir('reef-nspawn-');
  // Runs before processes.ts removes the folder when this process ends abruptly.
  process.prependListener('exit', () => unmountUnder(base));
  const tree = join(base, 'bookworm');
  const result = await runTracked(
    'debootstrap',
    ['--variant=minbase', '--include=systemd,systemd-sysv', 'bookworm', tree, DEBIAN_MIRROR],
    { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 600_000 },
  );
  unmountUnder(base);
  if (result.code !== 0) throw new Error(`debootstrap failed (exit ${result.code}):\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-3000)}`);
  return tree;
}

function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}


export interface BootOptions {
  tree: string;
  /** Host paths bound read-only at the same path inside. */
  readOnly: readonly string[];
  /** Host folder -> path inside, read-only. */
  shares?: Readonly<Record<string, string>>;
}

export class Container {
  private constructor(
    private readonly nspawn: ChildProcess,
    /** The container's init (systemd), seen from the host. */
    readonly leader: number,
    private readonly console: () => string,
  ) {}

  static async boot(options: BootOptions): Promise<Container> {
    const binds = [...new Set(options.readOnly.map((path) => realpathSync(path)))].map((path) => `--bind-ro=${path}`);
    for (const [host, inside] of Object.entries(options.shares ?? {})) binds.push(`--bind-ro=${host}:${inside}`);
    const nspawn = spawnTracked(
      'systemd-nspawn',
      [`--directory=${options.tree}`, '--boot', '--register=no', '--keep-unit', '--private-network', '--volatile=overlay', `--machine=reef-test-${process.pid}`, ...binds],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SYSTEMD_COLORS: '0' } },
    );
    let log = '';
    nspawn.stdout!.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-20_000)));
    nspawn.stderr!.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-20_000)));
    const deadline = Date.now() + 30_000;
    let leader: number | undefined;
    while (leader === undefined) {
      if (nspawn.exitCode !== null) throw new Error(`systemd-nspawn exited with ${nspawn.exitCode}:\n${log}`);
      if (Date.now() > deadline) {
        await stopProcess(nspawn, 'SIGKILL');
        throw new Error(`the container's systemd did not appear within 30 s:\n${log}`);
      }
      const pending = childrenOf(nspawn.pid!);
      for (let i = 0; i < pending.length && leader === undefined; i++) {
        if (comm(pending[i]!) === 'systemd') leader = pending[i];
        else pending.push(...childrenOf(pending[i]!));
      }
      if (leader === undefined) await sleep(100);
    }
    const container = new Container(nspawn, leader, () => log);
    process.prependListener('exit', () => container.killNow());
    // systemctl cannot reach the container's systemd until it has opened its socket.
    const bootDeadline = Date.now() + 120_000;
    for (;;) {
      const state = await container.run(['systemctl', 'is-system-running', '--wait'], { timeoutMs: 120_000 });
      if (/^(running|degraded)$/m.test(state.stdout)) return container;
      if (Date.now() > bootDeadline || /^(stopping|offline|maintenance)$/m.test(state.stdout)) {
        await container.shutdown();
        throw new Error(`the container did not finish booting (${state.stdout.trim() || `exit ${state.code}: ${state.stderr.trim()}`}):\n${log}`);
      }
      await sleep(250);
    }
  }

  /** Runs a command inside, as root, with a clean environment plus `env`. */
  run(command: readonly string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
    const env = Object.entries({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8', ...options.env }).map(([k, v]) => `${k}=${v}`);
    return runTracked('nsenter', [`--target=${this.leader}`, '--all', 'env', '-i', ...env, ...command], { timeoutMs: options.timeoutMs ?? 120_000 });
  }

  /** Like run, but throws with the command's output unless it exits 0; returns stdout. */
  async ok(command: readonly string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<string> {
    const result = await this.run(command, options);
    if (result.code !== 0) throw new Error(`${command.join(' ')} exited ${result.code} in the container:\n${result.stdout}\n${result.stderr}`);
    return result.stdout;
  }

  /** The container's console output so far (the end of it). */
  consoleLog(): string {
    return this.console();
  }

  private killNow(): void {
    if (isProcessAlive(this.leader)) process.kill(this.leader, 'SIGKILL');
  }

  /** Powers the container off (SIGTERM to nspawn); kills its init if that takes over 60 s. */
  async shutdown(): Promise<void> {
    const killer = setTimeout(() => this.killNow(), 60_000);
    try {
      await stopProcess(this.nspawn, 'SIGTERM', 70_000);
    } finally {
      clearTimeout(killer);
      this.killNow();
    }
  }
}

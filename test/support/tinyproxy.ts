/**
 * Real third-party daemons for carrier tests, run in the foreground on 127.0.0.1 with
 * config files written to a temp dir: tinyproxy here, nginx in ./nginx.ts (which uses
 * startDaemon below). Nothing outside the temp dir is touched, so they run as root too.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { removeTempDir, spawnTracked, stopProcess, trackedTempDir } from './processes.js';

const SETPRIV = '/usr/bin/setpriv';

export interface Daemon {
  /** The first port of `ports`: the one the daemon was waited on. */
  readonly port: number;
  readonly ports: readonly number[];
  /** Its temp dir: config, pid and logs. */
  readonly dir: string;
  /** What it printed so far (stdout and stderr), for failure messages. */
  output(): string;
  /** SIGTERM (SIGKILL after 5 s), wait for the exit, kill its process group, remove the temp dir. */
  stop(): Promise<void>;
}

export interface DaemonSpec {
  /** For messages and the temp dir's name. */
  name: string;
  command: string;
  /** How many free ports to pick for the config; all are waited on. */
  ports?: number;
  /** Files to write into the temp dir (name → content), knowing the ports and the dir. */
  files(ctx: { dir: string; ports: number[] }): Record<string, string>;
  args(ctx: { dir: string; ports: number[] }): string[];
}

/**
 * Starts a daemon on free ports and resolves once every port accepts connections. A port
 * taken by someone else between picking and binding makes the daemon exit; it is then
 * started again on new ports (three attempts).
 */
export async function startDaemon(spec: DaemonSpec): Promise<Daemon> {
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const dir = await trackedTempDir(`reef-${spec.name}-`);
    const ports: number[] = [];
    for (let i = 0; i < (spec.ports ?? 1); i += 1) ports.push(await freePort(ports));
    for (const [name, content] of Object.entries(spec.files({ dir, ports }))) await writeFile(join(dir, name), content);
    const args = spec.args({ dir, ports });
    // Its own process group, killed whole on stop or when this process ends (see
    // processes.ts); setpriv --pdeathsig also covers this process dying by SIGKILL, which
    // no handler sees: the daemon then gets SIGTERM instead of living on with its ports.
    const child = existsSync(SETPRIV)
      ? spawnTracked(SETPRIV, ['--pdeathsig', 'TERM', '--', spec.command, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawnTracked(spec.command, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-64 * 1024);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.once('error', (err) => collect(Buffer.from(`\nspawn failed: ${err.message}\n`)));
    try {
      for (const port of ports) await waitForPort(port, child, exited);
    } catch (err) {
      await stopProcess(child, 'SIGTERM', 5000);
      await removeTempDir(dir);
      lastError = new Error(`${spec.name} did not start: ${(err as Error).message}\n${output}`);
      continue;
    }
    let stopped: Promise<void> | undefined;
    return {
      port: ports[0]!,
      ports,
      dir,
      output: () => output,
      stop() {
        stopped ??= stopProcess(child, 'SIGTERM', 5000).then(() => removeTempDir(dir));
        return stopped;
      },
    };
  }
  throw lastError!;
}

export interface TinyproxyOptions {
  /** Require these credentials (tinyproxy answers 407 without them, or with others). */
  basicAuth?: { username: string; password: string };
  /** Ports CONNECT may reach; all when absent (tinyproxy's rule when no ConnectPort line is given). */
  connectPorts?: number[];
}

/** tinyproxy on 127.0.0.1, allowing only 127.0.0.1 as a client. */
export function startTinyproxy(options: TinyproxyOptions = {}): Promise<Daemon> {
  return startDaemon({
    name: 'tinyproxy',
    command: '/usr/bin/tinyproxy',
    files: ({ ports }) => ({
      'tinyproxy.conf': [
        `Port ${ports[0]}`,
        'Listen 127.0.0.1',
        'Allow 127.0.0.1',
        'Timeout 30',
        'MaxClients 64',
        'LogLevel Info',
        ...(options.basicAuth ? [`BasicAuth ${options.basicAuth.username} ${options.basicAuth.password}`] : []),
        ...(options.connectPorts ?? []).map((port) => `ConnectPort ${port}`),
        '',
      ].join('\n'),
    }),
    // -d: foreground, logging to stderr. No User/Group/PidFile: it keeps the current user.
    args: ({ dir }) => ['-d', '-c', join(dir, 'tinyproxy.conf')],
  });
}

/** A port free on 127.0.0.1 right now (and not in `taken`). */
export async function freePort(taken: readonly number[] = []): Promise<number> {
  for (;;) {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (!taken.includes(port)) return port;
  }
}

async function waitForPort(port: number, child: ChildProcess, exited: Promise<void>): Promise<void> {
  const deadline = Date.now() + 10_000;
  let gone = false;
  void exited.then(() => (gone = true));
  while (Date.now() < deadline) {
    if (gone) throw new Error(`it exited (code ${child.exitCode ?? child.signalCode}) before listening on ${port}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`nothing listened on ${port} within 10 s`);
}

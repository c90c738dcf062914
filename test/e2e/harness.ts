/**
 * Starts real `reef` and `tentacle` processes from the CLI, as a user would, on loopback
 * with ports chosen here. Every process is killed with its process group, and every temp
 * folder removed, when the test file's `after` calls `stopAll()` (or when the file's
 * process ends: see test/support/processes.ts); stderr logs are kept under test-output/
 * for post-mortems.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { REEF_BIN as REEF, TENTACLE_BIN as TENTACLE } from '../support/built.js';
import { runTracked, spawnTracked, stopProcess, trackedTempDir } from '../support/processes.js';

export { stopAll } from '../support/processes.js';

export const REPO = resolve(import.meta.dirname, '../..');
const OUTPUT = join(REPO, 'test-output', 'e2e');

/** A temp folder removed by `stopAll()`. */
export async function tempDir(prefix: string): Promise<string> {
  return trackedTempDir(`reef-${prefix}-`);
}

/** A port that was free a moment ago (processes need fixed ports to survive restarts). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a CLI command to its end (its process group is killed after two minutes: code -1). */
export async function cli(bin: 'reef' | 'tentacle', args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const result = await runTracked(process.execPath, [bin === 'reef' ? REEF : TENTACLE, ...args], { env: { ...process.env, REEF_LOG_LEVEL: 'warn', ...env }, timeoutMs: 120_000 });
  return { ...result, code: result.code ?? -1 };
}

/** Runs a CLI command that must succeed; returns its trimmed stdout. */
export async function ok(bin: 'reef' | 'tentacle', args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const result = await cli(bin, args, env);
  if (result.code !== 0) throw new Error(`${bin} ${args.join(' ')} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  return result.stdout.trim();
}

async function logFile(name: string) {
  await mkdir(OUTPUT, { recursive: true });
  return createWriteStream(join(OUTPUT, `${name}-${Date.now()}.log`));
}

export interface ServerProcess {
  url: string;
  httpsPort: number;
  commsPort: number;
  thumbprint: string;
  adminKey: string | undefined;
  /** The portal's `admin` password, printed on the first run only. */
  adminPassword: string | undefined;
  /** What it printed at start, up to and including "Stop it with Ctrl+C". */
  banner: string;
  child: ChildProcess;
  /** Environment for `reef` admin commands against this server. */
  env(apiKey: string): NodeJS.ProcessEnv;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface ServerOptions {
  dataDir: string;
  httpsPort: number;
  commsPort: number;
  pickupTimeoutSeconds?: number;
  name?: string;
  extraArgs?: string[];
  /** How to start `reef` (default: this checkout's bin/reef.js on this node), e.g. a packaged /usr/bin/reef. */
  command?: readonly string[];
  /** Added to (and overriding) this process's environment. */
  env?: NodeJS.ProcessEnv;
}

/** Starts `reef server run`: this checkout's bin/reef.js, or `options.command` (an installed package's `reef`). */
export async function startServer(options: ServerOptions): Promise<ServerProcess> {
  const args = ['server', 'run', '--data', options.dataDir, '--https-port', String(options.httpsPort), '--comms-port', String(options.commsPort), '--host', '127.0.0.1'];
  if (options.pickupTimeoutSeconds) args.push('--pickup-timeout', String(options.pickupTimeoutSeconds));
  args.push(...(options.extraArgs ?? []));
  const [command, ...commandArgs] = options.command ?? [process.execPath, REEF];
  const child = spawnTracked(command!, [...commandArgs, ...args], { env: { ...process.env, REEF_LOG_LEVEL: 'info', ...options.env } });
  child.stderr!.pipe(await logFile(options.name ?? 'server'));
  let out = '';
  child.stdout!.setEncoding('utf8');
  await new Promise<void>((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within 60 s; stdout so far:\n${out}`)), 60_000);
    child.stdout!.on('data', (d: string) => {
      out += d;
      if (/Stop it with Ctrl\+C/.test(out)) {
        clearTimeout(timer);
        resolvePromise();
      }
    });
    child.once('exit', (code) => reject(new Error(`the server exited with ${code} before starting:\n${out}`)));
  });
  const thumbprint = /Thumbprint:\s+([0-9A-F]{64})/.exec(out)![1]!;
  const adminKey = /Admin API key[^:]*:\s+(API-\S+)/.exec(out)?.[1];
  const adminPassword = /Admin sign-in[^:]*:\s+admin \/ (\S+)/.exec(out)?.[1];
  const url = `https://127.0.0.1:${options.httpsPort}`;
  return {
    url,
    httpsPort: options.httpsPort,
    commsPort: options.commsPort,
    thumbprint,
    adminKey,
    adminPassword,
    banner: out,
    child,
    env: (apiKey) => ({ REEF_SERVER: url, REEF_API_KEY: apiKey, REEF_SERVER_THUMBPRINT: thumbprint }),
    kill: (signal = 'SIGTERM') => stop(child, signal),
  };
}

export interface AgentProcess {
  child: ChildProcess;
  /** Everything the agent logged so far (JSON lines). */
  log(): string;
  /**
   * What the agent is doing now, for a failure message: its scheduler state and CPU time
   * from /proc, and a Node diagnostic report (JS stack, libuv handles) written to
   * test-output/e2e on SIGUSR2, even from a busy loop.
   */
  diagnose(): Promise<string>;
}

/** Starts `tentacle agent` for an instance. */
export async function startAgent(root: string, instance: string): Promise<AgentProcess> {
  await mkdir(OUTPUT, { recursive: true });
  const child = spawnTracked(process.execPath, ['--report-on-signal', '--report-signal=SIGUSR2', `--report-directory=${OUTPUT}`, TENTACLE, 'agent', '--instance', instance], {
    env: { ...process.env, REEF_TENTACLE_ROOT: root, REEF_LOG_LEVEL: 'info' },
  });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
  child.stderr!.pipe(await logFile(`tentacle-${instance}`));
  return { child, log: () => log, diagnose: () => diagnoseProcess(child) };
}

async function diagnoseProcess(child: ChildProcess): Promise<string> {
  if (child.exitCode !== null || child.signalCode !== null) return `pid ${child.pid} has exited (${child.exitCode ?? child.signalCode})`;
  const ticks = (): string[] => readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const before = ticks();
  child.kill('SIGUSR2');
  await new Promise((r) => setTimeout(r, 1000));
  const after = ticks();
  const busy = Number(after[11]) + Number(after[12]) - Number(before[11]) - Number(before[12]);
  return `pid ${child.pid}: state ${after[0]}, ${busy} clock ticks of CPU in the last second (100 = one core); diagnostic report in ${OUTPUT}`;
}

/** Sends `signal` to the process, waits for its exit (SIGKILL after 10 s), then kills its group. */
export function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return stopProcess(child, signal);
}

/** Polls `check` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The SHA-256 of a file, read as a stream. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Gone, or a zombie nobody reaped (pid 1 in a container may not reap). */
export function processGone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return true;
  }
}

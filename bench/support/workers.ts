/**
 * Helper processes of a benchmark: a Reef server whose memory is measured alone, thousands
 * of simulated tentacles spread over several processes, a bare TLS baseline. Each runs
 * bench/support/worker-main.ts with one role module (bench/roles/NAME.ts) and is driven by
 * typed request/answer messages over the IPC channel.
 *
 * Node cannot raise its own open-file limit, and 10,000 connections need more than the
 * usual 1,024, so the worker is started by bash with `ulimit -n` raised first: to a
 * million where allowed, else to the hard limit (20,000 in this project's sandbox).
 * Every worker started is remembered, so the runner can stop whatever a benchmark left
 * behind, even after a failure or time-out; a worker whose parent dies exits too (its IPC
 * channel closes).
 *
 * REEF_BENCH_WORKER_FLAGS adds Node flags to every worker, to profile one:
 * `REEF_BENCH_WORKER_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench -- fleet`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('./worker-main.ts', import.meta.url));
const OPEN_FILES = 1_048_576;

/** A role module's operations: each takes one structured-clonable argument. */
export type Operations = Record<string, (args: any) => Promise<unknown>>;

export interface Request {
  id: number;
  op: string;
  args: unknown;
}

export type Answer = { id: number; result: unknown } | { id: number; error: string };

export interface Worker<Ops extends Operations> {
  readonly pid: number;
  readonly name: string;
  call<K extends keyof Ops & string>(op: K, ...args: Parameters<Ops[K]>): Promise<Awaited<ReturnType<Ops[K]>>>;
  /**
   * Without a signal: closes its IPC channel, which makes it exit (writing a CPU profile
   * when asked to), killed if it has not within two seconds. With one: sends it (SIGKILL
   * for a crash). Resolves once it has exited.
   */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const running = new Set<ChildProcess>();

export interface WorkerOptions {
  /** Runs the worker inside this network namespace (`ip netns exec`; see test/support/netns.ts). */
  netns?: string;
  /**
   * A plain JavaScript entry run with plain node, no tsx (the restarted server of
   * `reconnect` runs the built dist/ this way); it speaks the same protocol as worker-main.ts.
   */
  entry?: string;
  /** A command the worker's node runs under, e.g. `['heaptrack', '-o', FILE]` (bench/experiments/). */
  wrapper?: string[];
}

/** Starts `bench/roles/<role>.ts` in a process of its own; `name` appears in error messages. */
export async function startWorker<Ops extends Operations>(role: string, name = role, options: WorkerOptions = {}): Promise<Worker<Ops>> {
  const raise = 'ulimit -n "$0" 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"';
  const flags = (process.env.REEF_BENCH_WORKER_FLAGS ?? '').split(' ').filter(Boolean);
  // The IPC channel is an inherited descriptor, so it survives `ip netns exec`.
  const inside = options.netns ? ['ip', 'netns', 'exec', options.netns] : [];
  const program = options.entry ? [options.entry] : ['--import', 'tsx', ENTRY];
  const child = spawn('bash', ['-c', raise, String(OPEN_FILES), ...inside, ...(options.wrapper ?? []), process.execPath, '--expose-gc', ...flags, ...program, role], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  running.add(child);
  const exited = once(child, 'exit').then(() => {
    running.delete(child);
  });
  child.on('error', () => {}); // a send to a worker that just died; its exit rejects the pending calls
  const pending = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
  let nextId = 1;
  child.on('message', (answer: Answer) => {
    const call = pending.get(answer.id);
    if (!call) return;
    pending.delete(answer.id);
    if ('error' in answer) call.reject(new Error(`${name}: ${answer.error}`));
    else call.resolve(answer.result);
  });
  void exited.then(() => {
    for (const call of pending.values()) call.reject(new Error(`${name} (pid ${child.pid}) exited with ${child.exitCode ?? child.signalCode} before answering`));
    pending.clear();
  });
  // The first message says the role module is loaded.
  const loaded = await Promise.race([once(child, 'message').then(() => true), exited.then(() => false)]);
  if (!loaded) throw new Error(`${name} exited with ${child.exitCode ?? child.signalCode} while starting; see its output above`);
  return {
    pid: child.pid!,
    name,
    call(op, ...args) {
      const id = nextId++;
      child.send({ id, op, args: args[0] } satisfies Request);
      return new Promise((resolve, reject) => pending.set(id, { resolve: resolve as (value: unknown) => void, reject }));
    },
    async stop(signal) {
      await stopChild(child, signal);
    },
  };
}

/** Starts `count` workers of one role in parallel, named `<role>-1`, `<role>-2`, ... */
export function startWorkers<Ops extends Operations>(role: string, count: number, options: WorkerOptions = {}): Promise<Worker<Ops>[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => startWorker<Ops>(role, `${role}-${i + 1}`, options)));
}

/** Stops every worker still running; the runner calls this after each benchmark. */
export async function stopAllWorkers(): Promise<void> {
  await Promise.all([...running].map((child) => stopChild(child)));
}

async function stopChild(child: ChildProcess, signal?: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  if (signal) child.kill(signal);
  else if (child.connected) child.disconnect();
  const timer = setTimeout(() => child.kill('SIGKILL'), signal ? 10_000 : 2000);
  await exited;
  clearTimeout(timer);
}

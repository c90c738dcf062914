import type { Readable } from 'node:stream';
import type { CommsServer, TentacleAddress } from '../../comms/index.js';
import { ReefError } from '../../errors.js';
import type { Logger } from '../../logging.js';
import type { FinalState, LogStream, Machine, Store, TaskMachine, TaskWithMachines } from '../store/types.js';

/** Where a task's file content comes from (the server's uploaded files). */
export interface BlobSource {
  stat(sha256: string): Promise<{ size: number } | null>;
  open(sha256: string, offset?: number): Readable;
}

export interface MachineOutcome {
  state: FinalState;
  exitCode?: number | null;
  error?: string | null;
}

/** Everything one machine's part of a task needs. */
export interface MachineRun {
  task: TaskWithMachines;
  taskMachine: TaskMachine;
  machine: Machine;
  target: TentacleAddress;
  store: Store;
  comms: CommsServer;
  blobs: BlobSource;
  logger: Logger;
  /** Aborted when the task is cancelled. */
  signal: AbortSignal;
  /** Appends a server-side line to this machine's log. */
  log(stream: LogStream, text: string): Promise<void>;
  /** Persists lines from the tentacle (deduplicated by its sequence numbers). */
  appendTentacleLines(lines: { tentacleSeq: number; at: string; stream: LogStream; text: string }[]): Promise<void>;
  /** The highest tentacle sequence number already stored. */
  logCursor(): number;
}

const TRANSIENT = new Set(['REEF_CONNECTION_LOST', 'REEF_CALL_RESET', 'REEF_HEARTBEAT_TIMEOUT', 'REEF_CONNECT_FAILED', 'REEF_CALL_REFUSED', 'REEF_SHUTTING_DOWN']);

/**
 * Calls a tentacle method, riding out dropped links: a call that fails because the
 * connection went away is made again once the tentacle is back (the comms layer waits up
 * to the pickup timeout for a polling tentacle to reconnect, then fails with a message
 * naming it). Only idempotent methods go through here.
 */
export async function callTentacle<T>(
  run: MachineRun,
  method: string,
  args: unknown,
  options: { deadlineMs?: number; body?: () => Readable; signal?: AbortSignal } = {},
): Promise<T> {
  const signal = options.signal ?? run.signal;
  let lastReported = '';
  for (let attempt = 0; ; attempt++) {
    try {
      return (await run.comms.call(run.target, method, args, {
        signal,
        deadlineMs: options.deadlineMs,
        body: options.body?.(),
      })) as T;
    } catch (err) {
      if (!(err instanceof ReefError) || !TRANSIENT.has(err.code) || signal.aborted) throw err;
      if (err.message !== lastReported) {
        lastReported = err.message;
        run.logger.info({ machine: run.machine.name, method, err: err.message }, 'task: link lost; waiting for the tentacle to come back');
      }
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
    }
  }
}

import type { Readable } from 'node:stream';
import type { ArgsOf, PlainMethod, ResultOf } from '../../api/tentacle/index.js';
import type { CommsServer } from '../../comms/index.js';
import { RETRYABLE_CALL_CODES, ReefError } from '../../errors.js';
import { formatDuration } from '../../format.js';
import type { Logger } from '../../logging.js';
import type { FinalState, LogStream, Machine, Store, TaskMachine, TaskWithMachines } from '../store/types.js';
import { callTentacle, type TentacleEndpoint } from '../tentacle-client.js';
import type { TentacleReleases } from '../tentacle-releases/index.js';

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
  /** The machine's Tentacle, called through the contract. */
  tentacle: TentacleEndpoint;
  store: Store;
  comms: CommsServer;
  blobs: BlobSource;
  /** The Tentacle executables the server distributes. */
  releases: TentacleReleases;
  logger: Logger;
  /** Aborted when the task is cancelled or this node stops working on it. */
  signal: AbortSignal;
  /**
   * Aborted when this node stops working on it (shutdown, handover to another node, lost
   * lease) without recording an outcome. Calls that must outlive a cancel use this one.
   */
  stopped: AbortSignal;
  /**
   * How long the server waits for a Tentacle to honour a script's timeout or a cancel
   * before it ends the part itself (TaskEngineOptions.stopGraceMs).
   */
  graceMs: number;
  /** How long the Tentacle of a running script may stay out of contact (the server's setting; a task may set its own). */
  lostContactLimitMs: number;
  /** Records since when contact is lost (ms since the epoch), or null once it is back: shown on the machine run. */
  lostContact(since: number | null): Promise<void>;
  /** Appends a server-side line to this machine's log. */
  log(stream: LogStream, text: string): Promise<void>;
  /** Persists lines from the tentacle (deduplicated by its sequence numbers). */
  appendTentacleLines(lines: { tentacleSeq: number; at: string; stream: LogStream; text: string }[]): Promise<void>;
  /** The highest tentacle sequence number already stored. */
  logCursor(): number;
}

/**
 * Calls a tentacle method, riding out dropped links: a call that fails because the
 * connection went away is made again once the tentacle is back (the comms layer waits up
 * to the pickup timeout for a polling tentacle to reconnect, or keeps dialling a listening
 * one that long, then fails with a message naming it). Only idempotent methods go through
 * here. However the link fails, the retries end: a tentacle that keeps failing calls for
 * longer than the pickup timeout fails the machine's part with the last error.
 *
 * `lostContactMs` bounds the wait once the tentacle was reached (the lost-contact limit
 * while a script runs), counted from `lostSince` when contact was already lost before this
 * call (kept in the store across a server restart). `onLost` is told when contact is
 * lost, `onBack` when a call succeeds again after that.
 */
export async function callRetrying<M extends PlainMethod>(
  run: MachineRun,
  method: M,
  args: ArgsOf<M>,
  options: {
    deadlineMs?: number;
    signal?: AbortSignal;
    lostContactMs?: number;
    lostSince?: number;
    onLost?(since: number, err: ReefError): void;
    onBack?(since: number): void;
  } = {},
): Promise<ResultOf<M>> {
  const signal = options.signal ?? run.signal;
  const retryForMs = options.lostContactMs ?? run.comms.limits.pickupTimeoutMs;
  // The task log says once that the tentacle could not be reached yet, so a follower sees why it waits.
  let waitingNoted = false;
  const onWaiting = (note: string) => {
    if (waitingNoted) return;
    waitingNoted = true;
    run.log('info', note).catch(() => {});
  };
  let lastReported = '';
  let lostAt: number | undefined = options.lostSince;
  for (let attempt = 0; ; attempt++) {
    let pickupTimeoutMs: number | undefined;
    if (lostAt !== undefined && options.lostContactMs !== undefined) {
      pickupTimeoutMs = lostAt + options.lostContactMs - Date.now();
      if (pickupTimeoutMs <= 0) throw lostContact(run, lostAt, options.lostContactMs);
    }
    try {
      const result = await callTentacle(run.tentacle, method, args, { signal, deadlineMs: options.deadlineMs, pickupTimeoutMs, onWaiting });
      if (lostAt !== undefined) options.onBack?.(lostAt);
      return result;
    } catch (err) {
      if (!(err instanceof ReefError) || signal.aborted) throw err;
      if (lostAt !== undefined && options.lostContactMs !== undefined && STAYED_AWAY_CODES.has(err.code)) {
        throw lostContact(run, lostAt, options.lostContactMs, err.code === 'REEF_TENTACLE_NOT_CONNECTED' ? undefined : err);
      }
      if (!RETRYABLE_CALL_CODES.has(err.code)) throw err;
      if (lostAt === undefined) {
        lostAt = Date.now();
        options.onLost?.(lostAt, err);
      }
      if (Date.now() - lostAt >= retryForMs) {
        if (options.lostContactMs !== undefined) throw lostContact(run, lostAt, options.lostContactMs, err);
        throw new ReefError(err.code, `${run.tentacle.description} kept failing ${method} for ${formatDuration(retryForMs)} (the pickup timeout), so this machine's part gave up: ${err.message}`, {
          cause: err,
        });
      }
      if (err.message !== lastReported) {
        lastReported = err.message;
        run.logger.info({ machine: run.machine.name, method, err: err.message }, 'task: link lost; waiting for the tentacle to come back');
      }
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
    }
  }
}

/** The tentacle did not come back within the time it was given: not connected (polling), or not reachable (listening). */
const STAYED_AWAY_CODES: ReadonlySet<string> = new Set(['REEF_TENTACLE_NOT_CONNECTED', 'REEF_LISTENING_REFUSED', 'REEF_LISTENING_UNREACHABLE']);

function lostContact(run: MachineRun, lostAt: number, waitedMs: number, last?: ReefError): ReefError {
  return new ReefError(
    'REEF_TENTACLE_LOST',
    `Lost contact with Tentacle "${run.machine.name}" at ${new Date(lostAt).toISOString()} while its script was running, ` +
      `and it did not come back within ${formatDuration(waitedMs)} (the lost-contact limit): the Tentacle, its machine or the link is down. ` +
      'The Tentacle keeps the script and its output; if it comes back (within its retention period), its late lines and real outcome are ' +
      'added to this machine run as a late report, which leaves it Failed.' +
      (last ? ` The last attempt to reach it: ${last.message}` : ''),
    last ? { cause: last } : undefined,
  );
}

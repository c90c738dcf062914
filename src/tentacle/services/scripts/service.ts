/**
 * ScriptService: runs scripts for the server under tickets the server chooses, and owns
 * each ticket's lifecycle (start, status, cancel, complete, recovery after a restart).
 * README.md in this folder explains the design; launch.ts starts processes, tail.ts turns
 * their output into the durable log, layout.ts names the files of a ticket directory.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  DEFAULT_STATUS_LINES,
  STATUS_ANSWER_BUDGET_BYTES,
  TICKET_PATTERN,
  TICKET_RULE,
  type ScriptStatus,
  type ScriptSummary,
  type StartScriptArgs,
} from '../../../api/tentacle/index.js';
import { syncDir, writeFileAtomic } from '../../../durable-fs.js';
import { ReefError } from '../../../errors.js';
import { formatDuration } from '../../../format.js';
import type { Logger } from '../../../logging.js';
import type { ShellPaths } from '../shells.js';
import { launch, planLaunch } from './launch.js';
import { emptyTombstone, FILE, readJson, statOrNull, type Meta, type Result } from './layout.js';
import { readLogAfter, scanLog } from './log.js';
import { closeHandles, Run, summaryOf } from './run.js';
import { TailLoop } from './tail.js';
import { TicketLocks } from './ticket-lock.js';

export interface ScriptStatusRequest {
  ticket: string;
  /** Return lines with a greater sequence number; 0 (default) for all. */
  afterSeq?: number;
  /** At most this many lines (default 1000, at most 10000), and STATUS_ANSWER_BUDGET_BYTES as JSON. */
  maxLines?: number;
}

export interface ScriptServiceOptions {
  workspaceDir: string;
  logger: Logger;
  /** Overrides PATH lookup, per shell; null means "not installed". */
  shells?: Partial<ShellPaths>;
  /** Between SIGTERM and SIGKILL when cancelling. Default 5000. */
  cancelGraceMs?: number;
  /** How often output files are read and the log flushed. Default 50. */
  pollIntervalMs?: number;
  /** Tombstones of completed tickets older than this are removed. Default 30 days. */
  tombstoneTtlMs?: number;
  /**
   * How long a finished script the server has not collected (completed) is kept, so a
   * server that lost contact can still collect its lines and outcome. Default 7 days
   * (DEFAULT_SCRIPT_RETENTION_MS); then the ticket is removed and answers REEF_TICKET_EXPIRED.
   */
  retentionMs?: number;
}

export const DEFAULT_SCRIPT_RETENTION_MS = 7 * 24 * 3600 * 1000;

/** How often the workspace is swept for tickets past their retention (at most). */
const SWEEP_EVERY_MS = 3600 * 1000;

export class ScriptService {
  /** Settles once recovery of the workspace is done; every method waits for it. */
  readonly ready: Promise<void>;
  private readonly workspaceDir: string;
  private readonly logger: Logger;
  private readonly shellOverrides: Partial<ShellPaths>;
  private readonly tombstoneTtlMs: number;
  private readonly retentionMs: number;
  private readonly locks = new TicketLocks();
  private sweeper?: NodeJS.Timeout;
  private readonly tail: TailLoop;
  private readonly runs = new Map<string, Run>();
  private readonly loading = new Map<string, Promise<Run>>();
  private readonly starting = new Map<string, Promise<ScriptSummary>>();
  private closed = false;

  constructor(options: ScriptServiceOptions) {
    this.workspaceDir = path.resolve(options.workspaceDir);
    this.logger = options.logger;
    this.shellOverrides = options.shells ?? {};
    this.tail = new TailLoop({ logger: this.logger, pollMs: options.pollIntervalMs ?? 50, graceMs: options.cancelGraceMs ?? 5000 });
    this.tombstoneTtlMs = options.tombstoneTtlMs ?? 30 * 24 * 3600 * 1000;
    this.retentionMs = options.retentionMs ?? DEFAULT_SCRIPT_RETENTION_MS;
    this.ready = this.recover();
    this.ready.catch((err: unknown) => this.logger.error({ err }, 'recovering the script workspace failed'));
    this.ready.then(() => this.scheduleSweep(), () => undefined);
  }

  /**
   * Scans the workspace: scripts without a result are adopted (tailed until they end, or
   * reported Orphaned when their process is gone) and old tombstones are pruned. Runs on
   * construction; calling it again only picks up tickets not yet known.
   */
  async recover(): Promise<void> {
    await mkdir(this.workspaceDir, { recursive: true });
    for (const ticket of await this.ticketsOnDisk()) {
      if (!this.runs.has(ticket)) await this.locks.with(ticket, () => this.recoverTicket(ticket));
    }
  }

  /**
   * Removes finished tickets the server never collected once they are older than the
   * retention period: each becomes a tombstone marked expired, so a late status says
   * why its lines are gone and a late retried start is still refused. Returns the
   * tickets removed.
   */
  async sweep(now = Date.now()): Promise<string[]> {
    await this.usable();
    const removed: string[] = [];
    for (const ticket of await this.ticketsOnDisk()) {
      const expired = await this.locks.with(ticket, async () => {
        const dir = this.dirOf(ticket);
        if (await statOrNull(path.join(dir, FILE.completed))) return false;
        const result = await readJson<Result>(path.join(dir, FILE.result));
        if (!result || now - Date.parse(result.finishedAt) < this.retentionMs) return false;
        await this.retire(ticket, `${EXPIRED_MARK} ${new Date(now).toISOString()}`);
        return true;
      });
      if (expired) removed.push(ticket);
    }
    if (removed.length) {
      this.logger.warn(
        { tickets: removed, retentionMs: this.retentionMs },
        'scripts finished but never collected by the server were removed after the retention period',
      );
    }
    return removed;
  }

  /** Every ticket this Tentacle holds that was not completed, with its state. */
  async list(): Promise<ScriptSummary[]> {
    await this.usable();
    const out: ScriptSummary[] = [];
    for (const ticket of await this.ticketsOnDisk()) {
      const summary = await this.locks.with(ticket, async () => {
        if (await statOrNull(path.join(this.dirOf(ticket), FILE.completed))) return undefined;
        return summaryOf(await this.loadNow(ticket));
      });
      if (summary) out.push(summary);
    }
    return out;
  }

  async start(request: StartScriptArgs): Promise<ScriptSummary> {
    validTicket(request.ticket);
    await this.usable();
    const { ticket } = request;
    const previous = this.starting.get(ticket);
    const attempt = (previous ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => this.locks.with(ticket, () => this.startOnce(request)));
    this.starting.set(ticket, attempt);
    try {
      return await attempt;
    } finally {
      if (this.starting.get(ticket) === attempt) this.starting.delete(ticket);
    }
  }

  async status(request: ScriptStatusRequest): Promise<ScriptStatus> {
    const ticket = validTicket(request.ticket);
    const afterSeq = request.afterSeq ?? 0;
    const maxLines = request.maxLines ?? DEFAULT_STATUS_LINES;
    await this.usable();
    // Under the ticket's lock: a completion cannot empty the directory between the load and the read.
    return this.locks.with(ticket, async () => {
      const run = await this.loadNow(ticket);
      // State first, lines second: a finished state then guarantees the lines are all there.
      const summary = summaryOf(run);
      const available = run.nextSeq - 1;
      const logBytes = run.logBytes;
      // Bounded by bytes too: NUL-heavy output is six times larger as JSON, and an answer
      // of maxLines such lines would pass the comms message limit.
      const lines = await readLogAfter(run.file(FILE.log), run.index, logBytes, afterSeq, maxLines, STATUS_ANSWER_BUDGET_BYTES);
      const last = lines.at(-1)?.seq ?? afterSeq;
      return { ...summary, lines, nextSeq: last + 1, more: last < available };
    });
  }

  /**
   * Stops the script: SIGTERM to its process group, SIGKILL after cancelGraceMs to
   * whatever is left of the group. Resolves once the script has finished; the result has
   * `cancelled: true`. Cancelling a finished script just returns its summary.
   */
  async cancel(request: { ticket: string }): Promise<ScriptSummary> {
    const ticket = validTicket(request.ticket);
    await this.usable();
    const run = await this.load(ticket);
    if (!run.result) {
      // Not under the lock: stopping waits for the script, up to the grace period.
      run.stopping ??= this.tail.stop(run, 'cancelled');
      await run.stopping;
    }
    return summaryOf(run);
  }

  /**
   * The server has everything it needs: the ticket's workspace is deleted and a tombstone
   * kept, so a late retried start() is refused rather than run again. Idempotent; an
   * unknown ticket gets a tombstone too (its start may still be on its way).
   */
  async complete(request: { ticket: string }): Promise<{ ticket: string }> {
    const ticket = validTicket(request.ticket);
    await this.usable();
    await this.starting.get(ticket)?.catch(() => undefined);
    return this.locks.with(ticket, async () => {
      const dir = this.dirOf(ticket);
      if (await statOrNull(path.join(dir, FILE.completed))) return { ticket };
      if (await statOrNull(dir)) {
        const run = await this.loadNow(ticket);
        if (!run.result) {
          throw new ReefError(
            'REEF_TICKET_RUNNING',
            `Script ${ticket} is still running, so it cannot be completed yet: cancel it first, or wait until its status is no longer Running.`,
          );
        }
      }
      await this.retire(ticket, new Date().toISOString());
      this.logger.info({ ticket }, 'script completed; workspace deleted');
      return { ticket };
    });
  }

  /** Stops tailing and timers. Scripts keep running; a new ScriptService adopts them. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.sweeper);
    this.tail.close();
    await this.ready.catch(() => undefined);
    await this.locks.idle();
    await Promise.all([...this.loading.values()].map((p) => p.catch(() => undefined)));
    const runs = [...this.runs.values()];
    for (const run of runs) clearTimeout(run.timer);
    await Promise.all(runs.map((run) => run.pumping));
    for (const run of runs) {
      if (run.child) {
        run.child.removeAllListeners();
        run.child.on('error', () => undefined);
        run.child.unref();
      }
      await closeHandles(run);
      run.markFinished();
    }
  }

  private async usable(): Promise<void> {
    if (this.closed) throw closedError();
    await this.ready;
    if (this.closed) throw closedError();
  }

  /** Turns a finished ticket into a tombstone whose `completed` marker holds `mark`. Under the ticket's lock. */
  private async retire(ticket: string, mark: string): Promise<void> {
    const dir = this.dirOf(ticket);
    const run = this.runs.get(ticket);
    if (run) await closeHandles(run);
    await mkdir(dir, { recursive: true });
    await writeFileAtomic(path.join(dir, FILE.completed), `${mark}\n`);
    await emptyTombstone(dir);
    this.runs.delete(ticket);
  }

  /** One ticket found by recovery: a tombstone pruned or tidied, an unfinished script adopted. Under its lock. */
  private async recoverTicket(ticket: string): Promise<void> {
    if (this.runs.has(ticket)) return;
    const dir = this.dirOf(ticket);
    const tombstone = await statOrNull(path.join(dir, FILE.completed));
    if (tombstone) {
      if (Date.now() - tombstone.mtimeMs > this.tombstoneTtlMs) {
        await rm(dir, { recursive: true, force: true });
      } else {
        await emptyTombstone(dir); // finishes a complete() cut short by a crash
      }
      return;
    }
    if (await statOrNull(path.join(dir, FILE.result))) return; // finished: loaded when asked for
    await this.loadNow(ticket);
  }

  private scheduleSweep(): void {
    if (this.closed) return;
    this.sweeper = setTimeout(() => {
      this.sweep()
        .catch((err: unknown) => this.logger.error({ err }, 'sweeping finished scripts past their retention failed'))
        .finally(() => this.scheduleSweep());
    }, Math.min(SWEEP_EVERY_MS, Math.max(1000, this.retentionMs / 4)));
    this.sweeper.unref();
  }

  /** The ticket folders in the workspace (tombstones included). */
  private async ticketsOnDisk(): Promise<string[]> {
    const entries = await readdir(this.workspaceDir, { withFileTypes: true });
    return entries.filter((entry) => entry.isDirectory() && TICKET_PATTERN.test(entry.name)).map((entry) => entry.name);
  }

  private dirOf(ticket: string): string {
    return path.join(this.workspaceDir, ticket);
  }

  private async startOnce(request: StartScriptArgs): Promise<ScriptSummary> {
    const { ticket } = request;
    const dir = this.dirOf(ticket);
    if (await statOrNull(dir)) return summaryOf(await this.loadNow(ticket));
    const plan = await planLaunch(request, this.shellOverrides);
    // The claim: one mkdir wins, so a ticket's script is launched once.
    try {
      await mkdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return summaryOf(await this.loadNow(ticket));
      throw err;
    }
    await syncDir(this.workspaceDir);
    const run = await launch(request, dir, plan, { logger: this.logger, onExit: (r, code, signal) => void this.tail.onChildExit(r, code, signal) });
    this.runs.set(ticket, run);
    this.tail.wake(run);
    return summaryOf(run);
  }

  /** The Run for a ticket: in memory, or rebuilt from its directory. */
  private async load(ticket: string): Promise<Run> {
    await this.starting.get(ticket)?.catch(() => undefined);
    return this.locks.with(ticket, () => this.loadNow(ticket));
  }

  /** load() for callers that hold the ticket's lock (and run inside `starting`), so must not wait for it. */
  private async loadNow(ticket: string): Promise<Run> {
    const known = this.runs.get(ticket);
    if (known) return known;
    let loading = this.loading.get(ticket);
    if (!loading) {
      loading = this.loadFromDisk(ticket).finally(() => this.loading.delete(ticket));
      this.loading.set(ticket, loading);
    }
    return loading;
  }

  private async loadFromDisk(ticket: string): Promise<Run> {
    const dir = this.dirOf(ticket);
    const mark = await readTombstone(path.join(dir, FILE.completed));
    if (mark?.startsWith(EXPIRED_MARK)) {
      throw new ReefError(
        'REEF_TICKET_EXPIRED',
        `Script ${ticket} finished but the server did not collect it within this Tentacle's retention period ` +
          `(${formatDuration(this.retentionMs)}), so its lines and outcome were removed (${mark.slice(EXPIRED_MARK.length).trim()}).`,
      );
    }
    if (mark !== undefined) {
      throw new ReefError(
        'REEF_TICKET_COMPLETED',
        `Script ${ticket} was already completed and its workspace deleted; a ticket runs only once. Start the script with a new ticket.`,
      );
    }
    if (!(await statOrNull(dir))) {
      throw new ReefError('REEF_NOT_FOUND', `This Tentacle has no script with ticket ${ticket}; start it first.`);
    }
    const run = new Run(ticket, dir, await scanLog(path.join(dir, FILE.log)));
    run.meta = (await readJson<Meta>(run.file(FILE.meta))) ?? undefined;
    const result = await readJson<Result>(run.file(FILE.result));
    if (result) {
      run.result = result;
      run.markFinished();
    } else {
      this.logger.info({ ticket, pid: run.meta?.pid }, 'adopting a script started before this Tentacle process');
      this.tail.wake(run);
    }
    this.runs.set(ticket, run);
    return run;
  }
}

/** The `completed` marker of a ticket retired by the retention sweep starts with this. */
const EXPIRED_MARK = 'expired';

async function readTombstone(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function validTicket(ticket: unknown): string {
  if (typeof ticket !== 'string' || !TICKET_PATTERN.test(ticket)) {
    throw new ReefError(
      'REEF_INVALID_ARGUMENT',
      `${JSON.stringify(ticket)} is not a valid script ticket: it ${TICKET_RULE}.`,
    );
  }
  return ticket;
}

function closedError(): ReefError {
  return new ReefError('REEF_SHUTTING_DOWN', 'The script service is closed (the Tentacle is shutting down); retry once it is back.');
}


/**
 * ScriptService: runs scripts for the server under tickets the server chooses.
 *
 * The requirement: a script keeps running when the link, the server or the Tentacle
 * itself goes away, no output line is lost, and a Tentacle that died mid-script reports
 * the script clearly after its restart. The design, one ticket directory per script
 * (workspaceDir/<ticket>/):
 *
 * - The script runs under a tiny `sh` wrapper (WRAPPER below), spawned detached: its own
 *   session and process group, so cancel signals the whole tree and the Tentacle's death
 *   does not touch it. The wrapper runs the script and then writes its exit code to
 *   `exit`; it traps TERM/INT so it outlives a signalled group long enough to do so.
 * - stdout and stderr are not pipes but the files stdout.log and stderr.log, opened by
 *   the Tentacle and handed to the child. With the Tentacle gone the script neither
 *   blocks on a full pipe nor dies of SIGPIPE, and every byte it writes is on disk.
 * - The Tentacle tails both files every pollIntervalMs into numbered lines appended to
 *   log.jsonl, one write and one fdatasync per tick. Each record carries its offset in
 *   the raw file, so a restarted Tentacle resumes tailing exactly: no line is lost or
 *   repeated. status() only shows lines that are already durable.
 * - Once `exit` exists the Tentacle reads both files to their end, appends the last
 *   lines, and only then writes result.json: a finished state means the log is whole.
 * - meta.json records the wrapper's pid and start time (/proc/<pid>/stat), so after a
 *   restart a script still running is adopted (tailed until its `exit` appears) and one
 *   gone without an exit code is reported Orphaned with a system line saying why, even
 *   if its pid was reused meanwhile.
 * - start() claims a ticket with an atomic mkdir: retried starts, also from a restarted
 *   Tentacle, return the existing script's state and never run it twice. complete()
 *   empties the directory but keeps it with a `completed` marker as a tombstone, so a late
 *   retried start is refused (REEF_TICKET_COMPLETED) instead of running the script again.
 *   recover() prunes tombstones older than tombstoneTtlMs.
 *
 * Limits: the order between a stdout and a stderr line is as exact as one poll interval
 * (within a stream it is exact); output of background processes that outlive the script
 * is read until the script exits, not after. POSIX only (process groups, /proc).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rm, stat, truncate, type FileHandle } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DEFAULT_STATUS_LINES,
  TICKET_PATTERN,
  TICKET_RULE,
  type ScriptStatus,
  type ScriptSummary,
  type StartScriptArgs,
} from '../../api/tentacle/index.js';
import { ReefError } from '../../errors.js';
import type { Logger } from '../../logging.js';
import { syncDir, writeFileAtomic } from '../../durable-fs.js';
import { isGroupAlive, isProcessAlive, processStartTime, signalGroup } from './processes.js';
import {
  INDEX_EVERY,
  LineSplitter,
  readLogAfter,
  scanLog,
  type LogRecord,
} from './script-log.js';
import { detectShells, type ShellPaths } from './shells.js';

export interface ScriptStatusRequest {
  ticket: string;
  /** Return lines with a greater sequence number; 0 (default) for all. */
  afterSeq?: number;
  /** At most this many lines (default 1000, at most 10000). */
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
}

/** Raw bytes read per stream per tick before the log is flushed and the loop yields. */
const READ_BUDGET = 4 * 1024 * 1024;
const READ_CHUNK = 256 * 1024;
const RETRY_AFTER_ERROR_MS = 1000;

/** $1 is the exit file; the rest is the command. The trap keeps the wrapper alive to write it. */
const WRAPPER = [
  'trap : TERM INT HUP',
  'f=$1; shift',
  '"$@"',
  'c=$?',
  'printf "%s\\n" "$c" > "$f.tmp" && mv -f "$f.tmp" "$f"',
  'exit "$c"',
].join('\n');

const FILE = {
  stdout: 'stdout.log',
  stderr: 'stderr.log',
  exit: 'exit',
  meta: 'meta.json',
  cancel: 'cancel.json',
  log: 'log.jsonl',
  result: 'result.json',
  completed: 'completed',
  work: 'work',
} as const;

interface Meta {
  pid: number;
  pidStartTime: string | null;
  startedAt: string;
  timeoutMs?: number;
  deadline?: number;
}

interface Result {
  exitCode: number | null;
  cancelled: boolean;
  timedOut: boolean;
  orphaned: boolean;
  error?: string;
  finishedAt: string;
}

interface CancelMarker {
  reason: 'cancelled' | 'timeout';
  at: string;
}

type OutputStream = 'stdout' | 'stderr';

/** What ended a script that left no exit code. */
interface Gone {
  orphaned: boolean;
  message?: string;
  error?: string;
}

/** In-memory state of one ticket; everything in it can be rebuilt from its directory. */
class Run {
  /** Committed state: matches what log.jsonl durably holds. */
  nextSeq: number;
  logBytes: number;
  readonly index: number[];
  ends: Record<OutputStream, number>;
  /** Working state: raw bytes read, some of them still pending in a splitter. */
  readPos: Record<OutputStream, number>;
  splitters = { stdout: new LineSplitter(), stderr: new LineSplitter() };
  readonly raw: Partial<Record<OutputStream, FileHandle>> = {};
  log?: FileHandle;
  readonly system: string[] = [];
  meta?: Meta;
  child?: ChildProcess;
  gone?: Gone;
  result?: Result;
  stopping?: Promise<void>;
  timer?: NodeJS.Timeout;
  pumping?: Promise<void>;
  wakeAgain = false;
  readonly finished: Promise<void>;
  markFinished!: () => void;

  constructor(
    readonly ticket: string,
    readonly dir: string,
    scan: { nextSeq: number; bytes: number; index: number[]; ends: Record<OutputStream, number> },
  ) {
    this.nextSeq = scan.nextSeq;
    this.logBytes = scan.bytes;
    this.index = scan.index;
    this.ends = { ...scan.ends };
    this.readPos = { ...scan.ends };
    this.finished = new Promise((resolve) => (this.markFinished = resolve));
  }

  file(name: string): string {
    return path.join(this.dir, name);
  }
}

export class ScriptService {
  /** Settles once recovery of the workspace is done; every method waits for it. */
  readonly ready: Promise<void>;
  private readonly workspaceDir: string;
  private readonly logger: Logger;
  private readonly shellOverrides: Partial<ShellPaths>;
  private readonly graceMs: number;
  private readonly pollMs: number;
  private readonly tombstoneTtlMs: number;
  private readonly runs = new Map<string, Run>();
  private readonly loading = new Map<string, Promise<Run>>();
  private readonly starting = new Map<string, Promise<ScriptSummary>>();
  private closed = false;

  constructor(options: ScriptServiceOptions) {
    this.workspaceDir = path.resolve(options.workspaceDir);
    this.logger = options.logger;
    this.shellOverrides = options.shells ?? {};
    this.graceMs = options.cancelGraceMs ?? 5000;
    this.pollMs = options.pollIntervalMs ?? 50;
    this.tombstoneTtlMs = options.tombstoneTtlMs ?? 30 * 24 * 3600 * 1000;
    this.ready = this.recover();
    this.ready.catch((err: unknown) => this.logger.error({ err }, 'recovering the script workspace failed'));
  }

  /**
   * Scans the workspace: scripts without a result are adopted (tailed until they end, or
   * reported Orphaned when their process is gone) and old tombstones are pruned. Runs on
   * construction; calling it again only picks up tickets not yet known.
   */
  async recover(): Promise<void> {
    await mkdir(this.workspaceDir, { recursive: true });
    for (const entry of await readdir(this.workspaceDir, { withFileTypes: true })) {
      const ticket = entry.name;
      if (!entry.isDirectory() || !TICKET_PATTERN.test(ticket) || this.runs.has(ticket)) continue;
      const dir = this.dirOf(ticket);
      const tombstone = await statOrNull(path.join(dir, FILE.completed));
      if (tombstone) {
        if (Date.now() - tombstone.mtimeMs > this.tombstoneTtlMs) {
          await rm(dir, { recursive: true, force: true });
        } else {
          await emptyTombstone(dir); // finishes a complete() cut short by a crash
        }
        continue;
      }
      if (await statOrNull(path.join(dir, FILE.result))) continue; // finished: loaded when asked for
      await this.load(ticket);
    }
  }

  async start(request: StartScriptArgs): Promise<ScriptSummary> {
    validTicket(request.ticket);
    await this.usable();
    const { ticket } = request;
    const previous = this.starting.get(ticket);
    const attempt = (previous ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => this.startOnce(request));
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
    const run = await this.load(ticket);
    // State first, lines second: a finished state then guarantees the lines are all there.
    const summary = summaryOf(run);
    const available = run.nextSeq - 1;
    const lines = await readLogAfter(run.file(FILE.log), run.index, run.logBytes, afterSeq, maxLines);
    const last = lines.at(-1)?.seq ?? afterSeq;
    return { ...summary, lines, nextSeq: last + 1, more: last < available };
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
      run.stopping ??= this.stop(run, 'cancelled');
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
    const dir = this.dirOf(ticket);
    if (await statOrNull(path.join(dir, FILE.completed))) return { ticket };
    if (await statOrNull(dir)) {
      const run = await this.load(ticket);
      if (!run.result) {
        throw new ReefError(
          'REEF_TICKET_RUNNING',
          `Script ${ticket} is still running, so it cannot be completed yet: cancel it first, or wait until its status is no longer Running.`,
        );
      }
      await closeHandles(run);
    }
    await mkdir(dir, { recursive: true });
    await writeFileAtomic(path.join(dir, FILE.completed), `${new Date().toISOString()}\n`);
    await emptyTombstone(dir);
    this.runs.delete(ticket);
    this.logger.info({ ticket }, 'script completed; workspace deleted');
    return { ticket };
  }

  /** Stops tailing and timers. Scripts keep running; a new ScriptService adopts them. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.ready.catch(() => undefined);
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

  private dirOf(ticket: string): string {
    return path.join(this.workspaceDir, ticket);
  }

  private async startOnce(request: StartScriptArgs): Promise<ScriptSummary> {
    const { ticket } = request;
    const dir = this.dirOf(ticket);
    if (await statOrNull(dir)) return summaryOf(await this.loadNow(ticket));

    const shells = { ...(await detectShells()), ...this.shellOverrides };
    const wrapperShell = shells.sh;
    const interpreter = request.syntax === 'powershell' ? shells.pwsh : shells[request.syntax];
    if (!interpreter || !wrapperShell) {
      const missing = !interpreter ? (request.syntax === 'powershell' ? 'pwsh' : request.syntax) : 'sh';
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

    try {
      await mkdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return summaryOf(await this.loadNow(ticket));
      throw err;
    }
    await syncDir(this.workspaceDir);

    const scriptFile = path.join(dir, request.syntax === 'powershell' ? 'script.ps1' : 'script.sh');
    await writeFileAtomic(scriptFile, request.body);
    const cwd = request.cwd ?? path.join(dir, FILE.work);
    if (request.cwd === undefined) await mkdir(cwd);
    const command =
      request.syntax === 'powershell'
        ? [interpreter, '-NoProfile', '-NonInteractive', '-File', scriptFile]
        : [interpreter, scriptFile];

    const run = new Run(ticket, dir, { nextSeq: 1, bytes: 0, index: [], ends: { stdout: 0, stderr: 0 } });
    const out = openSync(run.file(FILE.stdout), 'a');
    const err = openSync(run.file(FILE.stderr), 'a');
    let child: ChildProcess;
    try {
      child = spawn(wrapperShell, ['-c', WRAPPER, 'reef-script', run.file(FILE.exit), ...command, ...(request.args ?? [])], {
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
      this.logger.error({ ticket, err: spawnError }, 'script failed to start');
    } else {
      const startedAt = Date.now();
      run.meta = {
        pid: child.pid,
        pidStartTime: await processStartTime(child.pid),
        startedAt: new Date(startedAt).toISOString(),
        ...(request.timeoutMs !== undefined ? { timeoutMs: request.timeoutMs, deadline: startedAt + request.timeoutMs } : {}),
      };
      await writeFileAtomic(run.file(FILE.meta), JSON.stringify(run.meta));
      run.child = child;
      child.once('exit', (code, signal) => void this.onChildExit(run, code, signal));
      this.logger.info({ ticket, pid: child.pid, syntax: request.syntax }, 'script started');
    }
    this.runs.set(ticket, run);
    this.wake(run);
    return summaryOf(run);
  }

  /** The Run for a ticket: in memory, or rebuilt from its directory. */
  private async load(ticket: string): Promise<Run> {
    await this.starting.get(ticket)?.catch(() => undefined);
    return this.loadNow(ticket);
  }

  /** load() for startOnce, which runs inside `starting` and must not wait for itself. */
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
    if (await statOrNull(path.join(dir, FILE.completed))) {
      throw new ReefError(
        'REEF_TICKET_COMPLETED',
        `Script ${ticket} was already completed and its workspace deleted; a ticket runs only once. Start the script with a new ticket.`,
      );
    }
    if (!(await statOrNull(dir))) {
      throw new ReefError('REEF_TICKET_NOT_FOUND', `This Tentacle has no script with ticket ${ticket}; start it first.`);
    }
    const run = new Run(ticket, dir, await scanLog(path.join(dir, FILE.log)));
    run.meta = (await readJson<Meta>(run.file(FILE.meta))) ?? undefined;
    const result = await readJson<Result>(run.file(FILE.result));
    if (result) {
      run.result = result;
      run.markFinished();
    } else {
      this.logger.info({ ticket, pid: run.meta?.pid }, 'adopting a script started before this Tentacle process');
      this.wake(run);
    }
    this.runs.set(ticket, run);
    return run;
  }

  private async onChildExit(run: Run, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    try {
      // The wrapper writes `exit` itself unless it was killed (SIGKILL): record that here.
      if ((await readExit(run)) === undefined) {
        const exitCode = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
        await writeFileAtomic(run.file(FILE.exit), `${exitCode}\n`);
      }
    } catch (err) {
      this.logger.error({ err, ticket: run.ticket }, 'recording the exit code of a script failed');
    }
    run.child = undefined;
    this.wake(run);
  }

  private async stop(run: Run, reason: CancelMarker['reason']): Promise<void> {
    const marker: CancelMarker = { reason, at: new Date().toISOString() };
    await writeFileAtomic(run.file(FILE.cancel), JSON.stringify(marker));
    const pgid = run.meta?.pid;
    if (pgid === undefined || run.result) return;
    run.system.push(
      reason === 'timeout'
        ? `The script ran longer than its timeout of ${run.meta?.timeoutMs} ms; stopping it (SIGTERM to its process group).`
        : 'Cancel requested; stopping the script (SIGTERM to its process group).',
    );
    this.logger.info({ ticket: run.ticket, pgid, reason }, 'stopping script');
    signalGroup(pgid, 'SIGTERM');
    this.wake(run);
    const killAt = Date.now() + this.graceMs;
    while (Date.now() < killAt && !this.closed) {
      if (run.result && !(await isGroupAlive(pgid))) return;
      await sleep(Math.min(this.pollMs, Math.max(killAt - Date.now(), 1)));
    }
    if (this.closed) return;
    if (!run.result) {
      run.system.push(`The script was still running ${this.graceMs} ms after SIGTERM; killing its process group (SIGKILL).`);
      this.wake(run);
    }
    signalGroup(pgid, 'SIGKILL');
    await run.finished;
  }

  /** Schedules a tick of the tail loop; at most one tick of a Run is in flight. */
  private wake(run: Run, delayMs = 0): void {
    if (this.closed || run.result) return;
    if (run.pumping) {
      if (delayMs === 0) run.wakeAgain = true;
      return;
    }
    clearTimeout(run.timer);
    run.timer = setTimeout(() => {
      run.timer = undefined;
      run.pumping = this.pump(run).finally(() => {
        run.pumping = undefined;
        const again = run.wakeAgain;
        run.wakeAgain = false;
        if (again) this.wake(run);
        else this.wake(run, this.pollMs);
      });
    }, delayMs);
  }

  private async pump(run: Run): Promise<void> {
    try {
      if (await this.tick(run)) run.wakeAgain = true;
    } catch (err) {
      this.logger.error({ err, ticket: run.ticket }, 'reading script output failed; will retry');
      await this.rollback(run);
      await sleep(RETRY_AFTER_ERROR_MS);
    }
  }

  /**
   * One pass of the tail loop: read new output, append its lines durably, and finish
   * the script once it has exited and all its output is in the log. Returns true when
   * output is left to read right away.
   */
  private async tick(run: Run): Promise<boolean> {
    if (run.result || this.closed) return false;
    // Whether the script ended is decided before reading: output read afterwards is complete.
    let exitCode = await readExit(run);
    if (exitCode === undefined && !run.gone && !run.child) {
      const alive = run.meta !== undefined && (await isProcessAlive(run.meta.pid, run.meta.pidStartTime));
      if (!alive) {
        exitCode = await readExit(run); // it may have written `exit` just before we looked
        if (exitCode === undefined) run.gone = await this.whyGone(run);
      }
    }
    const ended = exitCode !== undefined || run.gone !== undefined;
    if (!ended && !run.stopping && run.meta?.deadline !== undefined && Date.now() >= run.meta.deadline) {
      run.stopping = this.stop(run, 'timeout');
      run.stopping.catch((err: unknown) => this.logger.error({ err, ticket: run.ticket }, 'stopping a script at its timeout failed'));
    }

    const at = new Date().toISOString();
    let seq = run.nextSeq;
    const records: LogRecord[] = [];
    const ends = { ...run.ends };
    const system = run.system.splice(0);
    for (const text of system) records.push({ seq: seq++, at, stream: 'system', text });
    let more = false;
    for (const stream of ['stdout', 'stderr'] as const) {
      const lines = await this.readOutput(run, stream);
      if (lines.more) more = true;
      for (const line of lines.lines) {
        ends[stream] += line.bytes;
        records.push({ seq: seq++, at, stream, text: line.text, end: ends[stream] });
      }
    }
    const finishing = ended && !more;
    if (finishing) {
      for (const stream of ['stdout', 'stderr'] as const) {
        for (const line of run.splitters[stream].end()) {
          ends[stream] += line.bytes;
          records.push({ seq: seq++, at, stream, text: line.text, end: ends[stream] });
        }
      }
      if (run.gone?.message) records.push({ seq: seq++, at, stream: 'system', text: run.gone.message });
    }

    try {
      await this.append(run, records);
    } catch (err) {
      run.system.unshift(...system);
      throw err;
    }
    run.nextSeq = seq;
    run.ends = ends;
    if (finishing) await this.finish(run, exitCode);
    return more;
  }

  private async readOutput(run: Run, stream: OutputStream): Promise<{ lines: { text: string; bytes: number }[]; more: boolean }> {
    const lines: { text: string; bytes: number }[] = [];
    let fh = run.raw[stream];
    if (!fh) {
      try {
        fh = run.raw[stream] = await open(run.file(FILE[stream]), 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { lines, more: false };
        throw err;
      }
    }
    const chunk = Buffer.allocUnsafe(READ_CHUNK);
    for (let read = 0; read < READ_BUDGET; ) {
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, run.readPos[stream]);
      if (bytesRead === 0) return { lines, more: false };
      run.readPos[stream] += bytesRead;
      read += bytesRead;
      lines.push(...run.splitters[stream].push(chunk.subarray(0, bytesRead)));
    }
    return { lines, more: true };
  }

  private async append(run: Run, records: LogRecord[]): Promise<void> {
    if (records.length === 0) return;
    const parts: Buffer[] = [];
    const indexed: number[] = [];
    let offset = run.logBytes;
    for (const record of records) {
      const bytes = Buffer.from(`${JSON.stringify(record)}\n`);
      if ((record.seq - 1) % INDEX_EVERY === 0) indexed.push(offset);
      offset += bytes.length;
      parts.push(bytes);
    }
    run.log ??= await open(run.file(FILE.log), 'a');
    await run.log.appendFile(Buffer.concat(parts));
    await run.log.datasync();
    run.logBytes = offset;
    run.index.push(...indexed);
  }

  /** Puts the tail back to the last durable state after a failed tick. */
  private async rollback(run: Run): Promise<void> {
    run.readPos = { ...run.ends };
    run.splitters = { stdout: new LineSplitter(), stderr: new LineSplitter() };
    await closeHandles(run);
    await truncate(run.file(FILE.log), run.logBytes).catch(() => undefined);
  }

  private async whyGone(run: Run): Promise<Gone> {
    if (await readJson<CancelMarker>(run.file(FILE.cancel))) return { orphaned: false }; // we killed it
    if (!run.meta) {
      return {
        orphaned: true,
        message:
          'The Tentacle stopped while starting this script, before it recorded the script process; the script may not have run. Start it again with a new ticket if needed.',
      };
    }
    return {
      orphaned: true,
      message:
        'The Tentacle restarted while this script was running; its process is gone and its exit code is unknown. The output above is everything it wrote.',
    };
  }

  private async finish(run: Run, exitCode: number | undefined): Promise<void> {
    const cancel = await readJson<CancelMarker>(run.file(FILE.cancel));
    const result: Result = {
      exitCode: exitCode ?? null,
      cancelled: cancel !== null,
      timedOut: cancel?.reason === 'timeout',
      orphaned: run.gone?.orphaned ?? false,
      ...(run.gone?.error ? { error: run.gone.error } : {}),
      finishedAt: new Date().toISOString(),
    };
    await writeFileAtomic(run.file(FILE.result), JSON.stringify(result));
    run.result = result;
    await closeHandles(run);
    run.markFinished();
    this.logger.info({ ticket: run.ticket, ...result }, 'script finished');
  }
}

function summaryOf(run: Run): ScriptSummary {
  const r = run.result;
  if (!r) return { ticket: run.ticket, state: 'Running' };
  return {
    ticket: run.ticket,
    state: r.orphaned ? 'Orphaned' : 'Complete',
    ...(r.exitCode !== null ? { exitCode: r.exitCode } : {}),
    cancelled: r.cancelled,
    ...(r.timedOut ? { timedOut: true as const } : {}),
    ...(r.error ? { error: r.error } : {}),
  };
}

async function readExit(run: Run): Promise<number | undefined> {
  try {
    const text = await readFile(run.file(FILE.exit), 'utf8');
    const code = Number.parseInt(text, 10);
    return Number.isNaN(code) ? undefined : code;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function statOrNull(file: string) {
  try {
    return await stat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function closeHandles(run: Run): Promise<void> {
  const handles = [run.log, run.raw.stdout, run.raw.stderr];
  run.log = undefined;
  run.raw.stdout = undefined;
  run.raw.stderr = undefined;
  await Promise.all(handles.map((fh) => fh?.close().catch(() => undefined)));
}

async function emptyTombstone(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name !== FILE.completed) await rm(path.join(dir, name), { recursive: true, force: true });
  }
}

function validTicket(ticket: unknown): string {
  if (typeof ticket !== 'string' || !TICKET_PATTERN.test(ticket)) {
    throw new ReefError(
      'REEF_BAD_TICKET',
      `${JSON.stringify(ticket)} is not a valid script ticket: it ${TICKET_RULE}.`,
    );
  }
  return ticket;
}

function closedError(): ReefError {
  return new ReefError('REEF_CLOSED', 'The script service is closed (the Tentacle is shutting down); retry once it is back.');
}

/**
 * The tail loop: reads each running script's stdout.log and stderr.log into numbered,
 * durable lines of log.jsonl, one write and one fdatasync per tick, enforces the script's
 * timeout, and finishes the script (result.json) once it exited and its log is whole.
 */
import { open, truncate } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFileAtomic } from '../../../durable-fs.js';
import type { Logger } from '../../../logging.js';
import { isGroupAlive, isProcessAlive, signalGroup } from '../processes.js';
import { FILE, readExit, readJson, type CancelMarker, type OutputStream, type Result } from './layout.js';
import { INDEX_EVERY, LineSplitter, type LogRecord } from './log.js';
import { closeHandles, type Gone, type Run } from './run.js';

/** Raw bytes read per stream per tick before the log is flushed and the loop yields. */
const READ_BUDGET = 4 * 1024 * 1024;
const READ_CHUNK = 256 * 1024;
const RETRY_AFTER_ERROR_MS = 1000;

export interface TailOptions {
  logger: Logger;
  /** How often output files are read and the log flushed. */
  pollMs: number;
  /** Between SIGTERM and SIGKILL when stopping a script. */
  graceMs: number;
}

export class TailLoop {
  private readonly logger: Logger;
  private readonly pollMs: number;
  private readonly graceMs: number;
  private closed = false;

  constructor(options: TailOptions) {
    this.logger = options.logger;
    this.pollMs = options.pollMs;
    this.graceMs = options.graceMs;
  }

  /** No tick is scheduled from now on; ticks in flight end (see Run.pumping). */
  close(): void {
    this.closed = true;
  }

  /** The wrapper exited: records its exit code if it could not (killed), and reads on. */
  async onChildExit(run: Run, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    try {
      // The wrapper writes `exit` itself unless it was killed (SIGKILL): record that here.
      if ((await readExit(run.dir)) === undefined) {
        const exitCode = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
        await writeFileAtomic(run.file(FILE.exit), `${exitCode}\n`);
      }
    } catch (err) {
      this.logger.error({ err, ticket: run.ticket }, 'recording the exit code of a script failed');
    }
    run.child = undefined;
    this.wake(run);
  }

  /**
   * Stops the script: SIGTERM to its process group, SIGKILL after the grace period to
   * whatever is left of the group. Resolves once the script has finished.
   */
  async stop(run: Run, reason: CancelMarker['reason']): Promise<void> {
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
  wake(run: Run, delayMs = 0): void {
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
    let exitCode = await readExit(run.dir);
    if (exitCode === undefined && !run.gone && !run.child) {
      const alive = run.meta !== undefined && (await isProcessAlive(run.meta.pid, run.meta.pidStartTime));
      if (!alive) {
        exitCode = await readExit(run.dir); // it may have written `exit` just before we looked
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

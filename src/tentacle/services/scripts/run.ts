import type { ChildProcess } from 'node:child_process';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { ScriptSummary } from '../../../api/tentacle/index.js';
import type { Meta, OutputStream, Result } from './layout.js';
import { LineSplitter } from './log.js';

/** What ended a script that left no exit code. */
export interface Gone {
  orphaned: boolean;
  message?: string;
  error?: string;
}

/** In-memory state of one ticket; everything in it can be rebuilt from its directory. */
export class Run {
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
    scan: { nextSeq: number; bytes: number; index: number[]; ends: Record<OutputStream, number> } = EMPTY_LOG,
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

const EMPTY_LOG = { nextSeq: 1, bytes: 0, index: [], ends: { stdout: 0, stderr: 0 } };

export function summaryOf(run: Run): ScriptSummary {
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

export async function closeHandles(run: Run): Promise<void> {
  const handles = [run.log, run.raw.stdout, run.raw.stderr];
  run.log = undefined;
  run.raw.stdout = undefined;
  run.raw.stderr = undefined;
  await Promise.all(handles.map((fh) => fh?.close().catch(() => undefined)));
}

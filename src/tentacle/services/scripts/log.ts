/**
 * The numbered log of one script: raw output bytes become lines (LineSplitter), lines
 * are appended to log.jsonl, and log.jsonl is read back in bounded memory (scanLog,
 * readLogLines). One JSON object per line:
 *
 *   {"seq":1,"at":"2024-…Z","stream":"stdout","text":"hello","end":6}
 *
 * `end` (stdout/stderr only) is the byte offset in the raw stdout.log/stderr.log just
 * past what this line consumed, so after a restart tailing resumes exactly where the
 * last durable line stopped: no line is lost and none is written twice.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { MAX_LOG_LINE_BYTES, type ScriptLogLine } from '../../../api/tentacle/index.js';

export interface LogRecord extends ScriptLogLine {
  end?: number;
}

/** An in-memory offset is kept for every INDEX_EVERY-th line (seq 1, 1+N, 1+2N, …). */
export const INDEX_EVERY = 512;

export interface SplitLine {
  text: string;
  /** Raw bytes this line consumed, including its CR LF or LF. */
  bytes: number;
}

/**
 * Turns a byte stream into lines: LF or CR LF ends a line, a line longer than
 * maxLineBytes is cut on a UTF-8 character boundary, invalid UTF-8 becomes U+FFFD.
 * Bytes of an unfinished line stay pending until more arrive or end() is called.
 */
export class LineSplitter {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly maxLineBytes = MAX_LOG_LINE_BYTES) {}

  push(chunk: Buffer): SplitLine[] {
    const buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: SplitLine[] = [];
    let start = 0;
    for (let nl = buf.indexOf(0x0a, start); nl !== -1; nl = buf.indexOf(0x0a, start)) {
      let contentEnd = nl > start && buf[nl - 1] === 0x0d ? nl - 1 : nl;
      while (contentEnd - start > this.maxLineBytes) {
        const cut = this.cutPoint(buf, start);
        out.push({ text: buf.toString('utf8', start, cut), bytes: cut - start });
        start = cut;
      }
      out.push({ text: buf.toString('utf8', start, contentEnd), bytes: nl + 1 - start });
      start = nl + 1;
    }
    while (buf.length - start > this.maxLineBytes) {
      const cut = this.cutPoint(buf, start);
      out.push({ text: buf.toString('utf8', start, cut), bytes: cut - start });
      start = cut;
    }
    // A copy: the caller may reuse `chunk` for its next read.
    this.pending = Buffer.from(buf.subarray(start));
    return out;
  }

  /** The unfinished last line, if any (output that did not end with a newline). */
  end(): SplitLine[] {
    const rest = this.pending;
    this.pending = Buffer.alloc(0);
    if (rest.length === 0) return [];
    const contentEnd = rest[rest.length - 1] === 0x0d ? rest.length - 1 : rest.length;
    return [{ text: rest.toString('utf8', 0, contentEnd), bytes: rest.length }];
  }

  /** Where to cut a too-long line so that a multi-byte character stays whole. */
  private cutPoint(buf: Buffer, start: number): number {
    let cut = start + this.maxLineBytes;
    for (let back = 0; back < 3 && ((buf[cut] ?? 0) & 0xc0) === 0x80; back++) cut--;
    return ((buf[cut] ?? 0) & 0xc0) === 0x80 ? start + this.maxLineBytes : cut;
  }
}

/** Yields each complete line of `fh` in [start, end) with its byte offset. */
async function* readLogLines(
  fh: FileHandle,
  start: number,
  end: number,
): AsyncGenerator<{ offset: number; line: Buffer }> {
  const chunk = Buffer.alloc(256 * 1024);
  let carry = Buffer.alloc(0);
  let carryOffset = start;
  let pos = start;
  while (pos < end) {
    const { bytesRead } = await fh.read(chunk, 0, Math.min(chunk.length, end - pos), pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
    const buf = carry.length === 0 ? chunk.subarray(0, bytesRead) : Buffer.concat([carry, chunk.subarray(0, bytesRead)]);
    let lineStart = 0;
    for (let nl = buf.indexOf(0x0a); nl !== -1; nl = buf.indexOf(0x0a, lineStart)) {
      yield { offset: carryOffset + lineStart, line: buf.subarray(lineStart, nl) };
      lineStart = nl + 1;
    }
    carryOffset += lineStart;
    carry = Buffer.from(buf.subarray(lineStart));
  }
}

export interface LogScan {
  /** Bytes of whole, valid records; anything after (a write cut by a crash) is dropped. */
  bytes: number;
  nextSeq: number;
  index: number[];
  /** Raw stdout.log/stderr.log offsets already turned into durable lines. */
  ends: { stdout: number; stderr: number };
}

/**
 * Reads log.jsonl once from the start to rebuild what a Tentacle keeps in memory for a
 * script, and truncates a torn last record (the only damage a crash mid-append can do).
 */
export async function scanLog(file: string): Promise<LogScan> {
  const scan: LogScan = { bytes: 0, nextSeq: 1, index: [], ends: { stdout: 0, stderr: 0 } };
  let fh: FileHandle;
  try {
    fh = await open(file, 'r+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return scan;
    throw err;
  }
  try {
    const { size } = await fh.stat();
    for await (const { offset, line } of readLogLines(fh, 0, size)) {
      let record: LogRecord;
      try {
        record = JSON.parse(line.toString('utf8')) as LogRecord;
      } catch {
        break;
      }
      if (record.seq !== scan.nextSeq) break;
      if ((record.seq - 1) % INDEX_EVERY === 0) scan.index.push(offset);
      if (record.end !== undefined && record.stream !== 'system') scan.ends[record.stream] = record.end;
      scan.nextSeq = record.seq + 1;
      scan.bytes = offset + line.length + 1;
    }
    if (scan.bytes < size) {
      await fh.truncate(scan.bytes);
      await fh.sync();
    }
  } finally {
    await fh.close();
  }
  return scan;
}

/**
 * Lines with seq > afterSeq, at most maxLines and at most maxBytes as JSON (always at least
 * one line), reading [index offset, end) of the file. A line is measured by its record in
 * log.jsonl: the same JSON.stringify encoding as in the answer, plus the `end` field, so
 * the answer's lines never add up to more than maxBytes (bar a single line).
 */
export async function readLogAfter(
  file: string,
  index: readonly number[],
  end: number,
  afterSeq: number,
  maxLines: number,
  maxBytes: number,
): Promise<ScriptLogLine[]> {
  const lines: ScriptLogLine[] = [];
  if (end === 0 || maxLines <= 0) return lines;
  const slot = Math.min(Math.floor(Math.max(afterSeq, 0) / INDEX_EVERY), index.length - 1);
  const fh = await open(file, 'r');
  let bytes = 0;
  try {
    for await (const { line } of readLogLines(fh, index[slot] ?? 0, end)) {
      const record = JSON.parse(line.toString('utf8')) as LogRecord;
      if (record.seq <= afterSeq) continue;
      bytes += line.length + 1; // and a comma between lines
      if (lines.length > 0 && bytes > maxBytes) break;
      lines.push({ seq: record.seq, at: record.at, stream: record.stream, text: record.text });
      if (lines.length >= maxLines) break;
    }
  } finally {
    await fh.close();
  }
  return lines;
}

import { Transform } from 'node:stream';
import { formatBytes, formatRate } from './output.js';

/**
 * Transfer progress on stderr. On a terminal: one bar redrawn in place (percentage, bytes,
 * rate). Otherwise (CI logs, pipes): a plain line every `intervalMs` and one at the end, so
 * logs stay readable. `off` prints nothing (--json).
 */

export type ProgressMode = 'bar' | 'lines' | 'off';

export interface ProgressOptions {
  label: string;
  mode?: ProgressMode;
  /** Between plain lines; default 2 s. */
  intervalMs?: number;
  out?: NodeJS.WritableStream;
  now?: () => number;
}

export interface Progress {
  /** Total bytes transferred so far. */
  update(bytes: number): void;
  done(): void;
  /** Ends the bar without claiming completion (the transfer failed). */
  abort(): void;
}

const BAR_WIDTH = 24;
const REDRAW_MS = 100;

export function progressMode(json: boolean, stream: NodeJS.WriteStream = process.stderr): ProgressMode {
  if (json) return 'off';
  return stream.isTTY ? 'bar' : 'lines';
}

export function createProgress(total: number, options: ProgressOptions): Progress {
  const mode = options.mode ?? 'lines';
  const out = options.out ?? process.stderr;
  const now = options.now ?? Date.now;
  const interval = options.intervalMs ?? 2000;
  const started = now();
  let bytes = 0;
  let lastDraw = started;
  let finished = false;

  const percent = () => (total > 0 ? Math.floor((bytes / total) * 100) : 100);
  const rate = () => {
    const seconds = (now() - started) / 1000;
    return seconds > 0 ? bytes / seconds : 0;
  };
  const summary = () => `${percent()}% ${formatBytes(bytes)} of ${formatBytes(total)}, ${formatRate(rate())}`;

  const draw = (force: boolean) => {
    const t = now();
    if (mode === 'off') return;
    if (mode === 'bar') {
      if (!force && t - lastDraw < REDRAW_MS) return;
      const filled = total > 0 ? Math.round((bytes / total) * BAR_WIDTH) : BAR_WIDTH;
      const bar = '#'.repeat(filled) + '-'.repeat(BAR_WIDTH - filled);
      out.write(`\r\x1b[K${options.label} [${bar}] ${summary()}`);
    } else {
      if (!force && t - lastDraw < interval) return;
      out.write(`${options.label}: ${summary()}\n`);
    }
    lastDraw = t;
  };

  return {
    update(total) {
      if (finished) return;
      bytes = total;
      draw(false);
    },
    done() {
      if (finished) return;
      finished = true;
      draw(true);
      if (mode === 'bar') out.write('\n');
    },
    abort() {
      if (finished) return;
      finished = true;
      if (mode === 'bar') out.write('\n');
    },
  };
}

/** Passes bytes through unchanged, reporting the running total. */
export function countingStream(onBytes: (total: number) => void): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      total += chunk.length;
      onBytes(total);
      callback(null, chunk);
    },
  });
}

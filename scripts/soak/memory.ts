/**
 * The server's resident memory over the soak, and whether it grew. RSS is read from
 * /proc (the server is another process, and RSS is what an operator's monitoring sees).
 * RSS rises while a process warms up (JIT code, heap growing to its working size, the
 * SQLite page cache), so the first window starts only after a warm-up, and the verdict
 * compares means over windows rather than single samples, which jump with every GC.
 */
import { readFileSync } from 'node:fs';
import { distribution } from '../../bench/support/stats.js';

export interface RssSample {
  /** Epoch milliseconds. */
  at: number;
  rssBytes: number;
}

/** What the server's V8 heap held at a moment (from its /metrics), to tell a heap that grows from native memory that does. */
export interface HeapSample {
  at: number;
  heapUsedBytes: number;
  externalBytes: number;
}

/** The V8 heap figures of a Prometheus text page (prom-client's default metrics), or undefined when it has none. */
export function heapOfMetrics(text: string, at: number): HeapSample | undefined {
  const value = (name: string) => {
    const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    return match ? Number(match[1]) : undefined;
  };
  const heapUsedBytes = value('nodejs_heap_size_used_bytes');
  const externalBytes = value('nodejs_external_memory_bytes');
  return heapUsedBytes === undefined || externalBytes === undefined ? undefined : { at, heapUsedBytes, externalBytes };
}

/** Reads `read` every `intervalMs` (one read at a time, a failed one skipped) until stopped. */
export function sampleHeap(read: () => Promise<HeapSample | undefined>, intervalMs: number): { stop(): HeapSample[] } {
  const samples: HeapSample[] = [];
  let reading = false;
  const timer = setInterval(() => {
    if (reading) return;
    reading = true;
    read()
      .then((sample) => sample && samples.push(sample))
      .catch(() => {})
      .finally(() => (reading = false));
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return samples;
    },
  };
}

/** VmRSS of a live process, or undefined once it is gone. */
export function readRss(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Samples a process's RSS every `intervalMs` until stopped. */
export function sampleRss(pid: number, intervalMs: number): { stop(): RssSample[] } {
  const samples: RssSample[] = [];
  const take = () => {
    const rssBytes = readRss(pid);
    if (rssBytes !== undefined) samples.push({ at: Date.now(), rssBytes });
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

export interface MemoryWindows {
  /** How long the load runs before the first window opens. */
  warmupMs: number;
  /** Length of the first and of the last window. */
  windowMs: number;
  /** Largest accepted growth of the last window's mean over the first's, as a fraction. */
  tolerance: number;
}

/**
 * Shorter loads are not judged: their windows (a fifth of the run) fall inside the
 * warm-up, where RSS rises on a healthy server too, so a verdict would be noise.
 */
export const SHORTEST_JUDGED_LOAD_MS = 3 * 60_000;

export interface MemoryVerdict extends MemoryWindows {
  /** False when the load was too short to tell warm-up from a leak (see SHORTEST_JUDGED_LOAD_MS). */
  judged: boolean;
  firstWindowMeanBytes: number;
  lastWindowMeanBytes: number;
  peakBytes: number;
  /** (last - first) / first. */
  growth: number;
  samplesInWindows: [number, number];
  passed: boolean;
}

/**
 * Warm-up and windows for a load of `loadMs`: a minute each on a long run, a fifth of the
 * run each on a short one, so that the two windows never overlap.
 */
export function windowsFor(loadMs: number, tolerance: number): MemoryWindows {
  const slice = Math.min(60_000, Math.floor(loadMs / 5));
  return { warmupMs: slice, windowMs: slice, tolerance };
}

/** Compares the mean RSS of the first window after warm-up with that of the load's last window. */
export function judgeMemory(samples: readonly RssSample[], load: { startedAt: number; stoppedAt: number }, windows: MemoryWindows): MemoryVerdict {
  const judged = load.stoppedAt - load.startedAt >= SHORTEST_JUDGED_LOAD_MS;
  const { warmupMs, windowMs, tolerance } = windows;
  const within = (from: number, to: number) => samples.filter((s) => s.at >= from && s.at <= to).map((s) => s.rssBytes);
  const firstFrom = load.startedAt + warmupMs;
  const first = within(firstFrom, firstFrom + windowMs);
  const last = within(load.stoppedAt - windowMs, load.stoppedAt);
  const firstMean = distribution(first).mean;
  const lastMean = distribution(last).mean;
  const growth = firstMean > 0 ? (lastMean - firstMean) / firstMean : 0;
  return {
    ...windows,
    firstWindowMeanBytes: Math.round(firstMean),
    lastWindowMeanBytes: Math.round(lastMean),
    peakBytes: Math.max(0, ...samples.map((s) => s.rssBytes)),
    growth,
    samplesInWindows: [first.length, last.length],
    judged,
    // Without samples in both windows there is nothing to judge, and that is a failure.
    passed: first.length > 0 && last.length > 0 && (!judged || growth <= tolerance),
  };
}

/**
 * The server's memory over the soak, and whether it grew. RSS is read from /proc (the
 * server is another process, and RSS is what an operator's monitoring sees); the V8 heap
 * from the server's /metrics.
 *
 * RSS rises while a process warms up (JIT code, the heap growing to its working size),
 * for a minute with 2,000 Tentacles and about six with 10,000, and under load it swings by
 * a quarter with every major garbage collection (every one or two minutes). So the verdict
 * compares the load's middle third with its last third: after a warm-up that scales with
 * the run, over windows several GC cycles long, a server that has settled shows no growth,
 * and one that leaks shows it between the two. Two figures are compared: the mean RSS, and
 * the V8 heap's lowest use (what survives a major GC, where a leak of JavaScript objects
 * shows first).
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
  /** (last - first) / first, of the RSS means. */
  growth: number;
  samplesInWindows: [number, number];
  /** The V8 heap's lowest use in each window, when the heap was sampled in both. */
  heap?: { firstWindowLowBytes: number; lastWindowLowBytes: number; growth: number };
  passed: boolean;
}

/** Warm-up and windows for a load of `loadMs`: its first third, then its middle and its last third. */
export function windowsFor(loadMs: number, tolerance: number): MemoryWindows {
  const third = Math.floor(loadMs / 3);
  return { warmupMs: third, windowMs: third, tolerance };
}

/**
 * Compares the first window after warm-up with the load's last window: the mean RSS, and
 * (when `heap` has samples in both) the V8 heap's lowest use. Each may grow by `tolerance`.
 */
export function judgeMemory(
  samples: readonly RssSample[],
  load: { startedAt: number; stoppedAt: number },
  windows: MemoryWindows,
  heap: readonly HeapSample[] = [],
): MemoryVerdict {
  const judged = load.stoppedAt - load.startedAt >= SHORTEST_JUDGED_LOAD_MS;
  const { warmupMs, windowMs, tolerance } = windows;
  const firstFrom = load.startedAt + warmupMs;
  const inFirst = (s: { at: number }) => s.at >= firstFrom && s.at <= firstFrom + windowMs;
  const inLast = (s: { at: number }) => s.at >= load.stoppedAt - windowMs && s.at <= load.stoppedAt;
  const first = samples.filter(inFirst).map((s) => s.rssBytes);
  const last = samples.filter(inLast).map((s) => s.rssBytes);
  const firstMean = distribution(first).mean;
  const lastMean = distribution(last).mean;
  const growth = firstMean > 0 ? (lastMean - firstMean) / firstMean : 0;
  const heapFirst = heap.filter(inFirst).map((s) => s.heapUsedBytes);
  const heapLast = heap.filter(inLast).map((s) => s.heapUsedBytes);
  const heapVerdict =
    heapFirst.length && heapLast.length
      ? { firstWindowLowBytes: Math.min(...heapFirst), lastWindowLowBytes: Math.min(...heapLast), growth: Math.min(...heapLast) / Math.min(...heapFirst) - 1 }
      : undefined;
  return {
    ...windows,
    firstWindowMeanBytes: Math.round(firstMean),
    lastWindowMeanBytes: Math.round(lastMean),
    peakBytes: Math.max(0, ...samples.map((s) => s.rssBytes)),
    growth,
    samplesInWindows: [first.length, last.length],
    ...(heapVerdict ? { heap: heapVerdict } : {}),
    judged,
    // Without samples in both windows there is nothing to judge, and that is a failure.
    passed: first.length > 0 && last.length > 0 && (!judged || (growth <= tolerance && (!heapVerdict || heapVerdict.growth <= tolerance))),
  };
}

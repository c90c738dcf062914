/**
 * What a benchmark module exports and what it reports. Every benchmark lives in
 * bench/benchmarks/<name>.ts and default-exports a `Benchmark`; the runner finds it there,
 * so adding one (the cluster row, say) is a matter of adding that one module.
 */

export interface Benchmark {
  /** What `npm run bench -- NAME` selects; also the name of bench/results/NAME.json. */
  name: string;
  /** Where its rows go in docs/performance.md (the order: dispatch 1, fleet 2, ...). */
  order: number;
  /** One line for the table and `--help`: what is measured. */
  title: string;
  /** The runner gives up (and stops every worker) after this long. */
  timeoutMs: number;
  run(context: BenchContext): Promise<Measured>;
}

export interface BenchContext {
  /** A numeric `--name=value` from the command line, or the default. */
  param(name: string, fallback: number): number;
  /** Progress for the person watching (stderr). */
  log(message: string): void;
  /**
   * Runs after the benchmark, whether it finished, failed or timed out (last registered
   * first), once its workers have been stopped.
   */
  defer(cleanup: () => unknown): void;
}

export interface Measured {
  figures: Figure[];
  /** Everything else worth keeping in the JSON: raw distributions, counts, settings. */
  details?: Record<string, unknown>;
}

export type Unit = 'ms' | 's' | 'KiB' | 'MiB' | 'MiB/s' | 'kbit/s' | 'per s' | 'tentacles' | 'machines' | 'attempts';

/**
 * A target is a ratio to the baseline measured in the same run (noise on a shared machine
 * mostly cancels out) or, where the issue names no baseline, an absolute bound.
 */
export type Target =
  | { kind: 'ratio-at-most'; limit: number }
  | { kind: 'ratio-at-least'; limit: number }
  | { kind: 'at-most'; limit: number }
  | { kind: 'at-least'; limit: number };

export interface Figure {
  /** e.g. "p50, API call to result". */
  what: string;
  value: number;
  unit: Unit;
  /** The same quantity for the baseline, same unit, same run. */
  baseline?: { what: string; value: number };
  target?: Target;
}

export interface Verdict {
  ratio?: number;
  met?: boolean;
}

export function judge(figure: Figure): Verdict {
  const ratio = figure.baseline && figure.baseline.value > 0 ? figure.value / figure.baseline.value : undefined;
  const target = figure.target;
  if (!target) return { ratio };
  switch (target.kind) {
    case 'ratio-at-most':
      return { ratio, met: ratio !== undefined && ratio <= target.limit };
    case 'ratio-at-least':
      return { ratio, met: ratio !== undefined && ratio >= target.limit };
    case 'at-most':
      return { ratio, met: figure.value <= target.limit };
    case 'at-least':
      return { ratio, met: figure.value >= target.limit };
  }
}

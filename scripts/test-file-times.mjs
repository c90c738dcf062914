/**
 * A node:test reporter that prints, after the run, the test files that took longest (the
 * sum of each file's top-level tests), so the suites' budgets (npm test under 6 minutes
 * on an idle machine, docs/testing in README) can be kept with figures instead of guesses.
 * Used by scripts/run-tests.sh beside the usual reporter.
 */
import { relative } from 'node:path';

const SHOWN = 15;

export default async function* fileTimes(source) {
  const perFile = new Map();
  for await (const event of source) {
    if ((event.type === 'test:pass' || event.type === 'test:fail') && event.data.nesting === 0 && event.data.file) {
      const file = relative(process.cwd(), event.data.file);
      perFile.set(file, (perFile.get(file) ?? 0) + (event.data.details?.duration_ms ?? 0));
    }
  }
  const sorted = [...perFile].sort((a, b) => b[1] - a[1]);
  const total = sorted.reduce((sum, [, ms]) => sum + ms, 0);
  yield `\n# slowest test files (of ${sorted.length}; ${(total / 1000).toFixed(0)} s in all, run ${process.env.REEF_TEST_CONCURRENCY ?? '?'} at a time)\n`;
  for (const [file, ms] of sorted.slice(0, SHOWN)) yield `#   ${(ms / 1000).toFixed(1).padStart(6)} s  ${file}\n`;
}

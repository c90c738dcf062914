/**
 * `npm run soak`: the load test of docs/reliability.md. 2,000 polling tentacles against
 * one server running scripts in a loop for 5 minutes by default; prints a summary, writes
 * bench/results/soak.json (and its rows of the table in docs/performance.md) and the "Last soak result" of docs/reliability.md, and exits
 * non-zero when a check fails.
 *
 *   npm run soak -- --minutes 1 --tentacles 200
 *   npm run soak -- --store postgres://postgres@127.0.0.1/reef_soak
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { errorMessage } from '../src/errors.js';
import { REPO } from '../test/e2e/harness.js';
import { ensureOpenFileLimit } from './soak/open-files.js';
import { updatePerformanceDoc } from '../bench/support/report.js';
import { formatSummary, updateReliabilityDoc, writeResultFile } from './soak/report.js';
import { DEFAULT_SOAK_OPTIONS, defaultProcesses, runSoak, type SoakOptions } from './soak/run.js';

const USAGE = `npm run soak -- [--minutes 5] [--tentacles 2000] [--processes N] [--batch-size 50] [--parallel 8]
                    [--lines 20] [--grace-seconds 120] [--sample-seconds 5] [--tolerance 0.1] [--store postgres://...]`;

function parseOptions(argv: string[]): SoakOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      minutes: { type: 'string' },
      tentacles: { type: 'string' },
      processes: { type: 'string' },
      'batch-size': { type: 'string' },
      parallel: { type: 'string' },
      lines: { type: 'string' },
      'grace-seconds': { type: 'string' },
      'sample-seconds': { type: 'string' },
      tolerance: { type: 'string' },
      store: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  /** The flag's value (or `fallback`, in the flag's unit) times `scale`. */
  const number = (name: keyof typeof values, fallback: number, scale = 1): number => {
    const raw = values[name];
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got "${raw}".\n${USAGE}`);
    return n * scale;
  };
  const d = DEFAULT_SOAK_OPTIONS;
  const tentacles = Math.round(number('tentacles', d.tentacles));
  return {
    ...d,
    tentacles,
    durationMs: number('minutes', d.durationMs / 60_000, 60_000),
    processes: Math.round(number('processes', defaultProcesses(tentacles))),
    batchSize: Math.round(number('batch-size', d.batchSize)),
    parallel: Math.round(number('parallel', d.parallel)),
    linesPerScript: Math.round(number('lines', d.linesPerScript)),
    graceMs: number('grace-seconds', d.graceMs / 1000, 1000),
    sampleMs: number('sample-seconds', d.sampleMs / 1000, 1000),
    memoryTolerance: number('tolerance', d.memoryTolerance),
    store: values.store,
  };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  // A socket per tentacle, with room for the store, API clients and logs.
  ensureOpenFileLimit(options.tentacles + 1024);
  const started = performance.now();
  const result = await runSoak(options, (line) => process.stderr.write(`soak: ${line}\n`));
  process.stdout.write(`${formatSummary(result)}\n`);
  await writeResultFile(result, (performance.now() - started) / 1000);
  await updatePerformanceDoc(); // its headline figures are rows of the benchmarks' table
  await updateReliabilityDoc(result, join(REPO, 'docs/reliability.md'), ['npm run soak', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '));
  process.exitCode = result.passed ? 0 : 1;
}

// runSoak has stopped whatever it started by the time an error gets here.
main().catch((err: unknown) => {
  process.stderr.write(`soak: ${errorMessage(err)}\n`);
  process.exitCode = 2;
});

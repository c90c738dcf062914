/**
 * `npm run bench` runs every benchmark in bench/benchmarks/; `npm run bench -- NAME...`
 * runs the named ones. Numeric settings go as `--name=value` (e.g. `--tentacles=2000`);
 * each benchmark reads the ones it knows. Each run writes bench/results/NAME.json and
 * rewrites the table of docs/performance.md. Exits non-zero when a benchmark failed
 * (a missed target is a result, not a failure).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../src/errors.js';
import type { BenchContext, Benchmark, Measured } from './support/benchmark.js';
import { describeMachine, formatTarget, formatValue, REPO, updatePerformanceDoc, writeResult, type ResultFile } from './support/report.js';
import { stopAllWorkers } from './support/workers.js';

const BENCHMARKS_DIR = join(REPO, 'bench/benchmarks');

async function loadBenchmarks(): Promise<Benchmark[]> {
  const files = (await readdir(BENCHMARKS_DIR)).filter((name) => name.endsWith('.ts')).sort();
  const modules = await Promise.all(files.map((file) => import(join(BENCHMARKS_DIR, file)) as Promise<{ default: Benchmark }>));
  return modules.map((m) => m.default).sort((a, b) => a.order - b.order);
}

function parseCommandLine(argv: readonly string[]): { names: string[]; params: Record<string, number> } {
  const names: string[] = [];
  const params: Record<string, number> = {};
  for (const arg of argv) {
    const setting = /^--([a-z][a-z0-9-]*)=(.+)$/.exec(arg);
    if (setting) {
      const value = Number(setting[2]);
      if (!Number.isFinite(value)) throw new Error(`${arg}: the value must be a number`);
      params[setting[1]!] = value;
    } else if (arg.startsWith('-')) {
      throw new Error(`unknown option ${arg}; usage: npm run bench -- [NAME...] [--setting=number...]`);
    } else names.push(arg);
  }
  return { names, params };
}

async function runOne(benchmark: Benchmark, params: Record<string, number>): Promise<ResultFile> {
  const used: Record<string, number> = {};
  const cleanups: (() => unknown)[] = [];
  const context: BenchContext = {
    param: (name, fallback) => (used[name] = params[name] ?? fallback),
    log: (message) => process.stderr.write(`[${benchmark.name}] ${message}\n`),
    defer: (cleanup) => cleanups.push(cleanup),
  };
  const date = new Date().toISOString();
  const started = performance.now();
  let measured: Measured | undefined;
  let error: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not finish within ${benchmark.timeoutMs / 1000} s`)), benchmark.timeoutMs);
    });
    measured = await Promise.race([benchmark.run(context), timeout]);
  } catch (err) {
    error = errorMessage(err);
    context.log(`FAILED: ${error}`);
  } finally {
    clearTimeout(timer);
    // Workers first: after a time-out they may still be busy with files the cleanups remove.
    await stopAllWorkers();
    for (const cleanup of cleanups.reverse()) {
      await Promise.resolve()
        .then(cleanup)
        .catch((err: unknown) => context.log(`cleanup failed: ${errorMessage(err)}`));
    }
  }
  return writeResult({
    benchmark: benchmark.name,
    title: benchmark.title,
    order: benchmark.order,
    date,
    node: process.version,
    machine: describeMachine(),
    durationSeconds: (performance.now() - started) / 1000,
    params: used,
    figures: measured?.figures ?? [],
    details: measured?.details,
    error,
  });
}

function summary(result: ResultFile): string {
  if (result.error) return `${result.benchmark}: FAILED (${result.error})`;
  const rows = result.figures.map((f) => {
    const against = f.baseline ? ` vs ${formatValue(f.baseline.value, f.unit)} (${f.ratio?.toFixed(2)}×)` : '';
    const target = f.target ? `  target ${formatTarget(f.target, f.unit)}: ${f.met ? 'met' : 'MISSED'}` : '';
    return `  ${f.what}: ${formatValue(f.value, f.unit)}${against}${target}`;
  });
  return [`${result.benchmark} (${Math.round(result.durationSeconds)} s):`, ...rows].join('\n');
}

const { names, params } = parseCommandLine(process.argv.slice(2));
const all = await loadBenchmarks();
const unknown = names.filter((name) => !all.some((b) => b.name === name));
if (unknown.length) {
  process.stderr.write(`No benchmark named ${unknown.join(', ')}. There are: ${all.map((b) => b.name).join(', ')}.\n`);
  process.exit(2);
}
const selected = names.length ? all.filter((b) => names.includes(b.name)) : all;
const started = performance.now();
const results: ResultFile[] = [];
for (const benchmark of selected) {
  process.stderr.write(`\n== ${benchmark.name}: ${benchmark.title}\n`);
  const result = await runOne(benchmark, params);
  results.push(result);
  await updatePerformanceDoc();
  process.stdout.write(`${summary(result)}\n`);
}
process.stdout.write(`\n${selected.length} benchmark(s) in ${((performance.now() - started) / 1000).toFixed(0)} s; results in bench/results/, table in docs/performance.md\n`);
process.exitCode = results.some((r) => r.error) ? 1 : 0;

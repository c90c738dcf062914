/**
 * Where results go: bench/results/<name>.json for each benchmark run (figures, baselines,
 * verdicts, details, the machine and Node version), and the table of docs/performance.md,
 * rebuilt from every result file so that running one benchmark updates its rows only.
 * The table sits between two marker comments; the prose around it is written by hand.
 */
import { cpus, release, totalmem } from 'node:os';
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { judge, type Figure, type Target, type Unit, type Verdict } from './benchmark.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const RESULTS_DIR = join(REPO, 'bench/results');
export const PERFORMANCE_DOC = join(REPO, 'docs/performance.md');
const TABLE_BEGIN = '<!-- bench:table:begin (npm run bench rewrites this part) -->';
const TABLE_END = '<!-- bench:table:end -->';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
}

export interface ResultFile {
  benchmark: string;
  title: string;
  order: number;
  date: string;
  node: string;
  machine: Machine;
  durationSeconds: number;
  params: Record<string, number>;
  figures: (Figure & Verdict)[];
  details?: Record<string, unknown>;
  /** Set when the benchmark failed or timed out: it produced no figures. */
  error?: string;
}

export function describeMachine(): Machine {
  return { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), kernel: `Linux ${release()}` };
}

export async function writeResult(result: Omit<ResultFile, 'figures'> & { figures: Figure[] }): Promise<ResultFile> {
  const file: ResultFile = { ...result, figures: result.figures.map((figure) => ({ ...figure, ...judge(figure) })) };
  await mkdir(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${result.benchmark}.json`);
  await writeFile(`${path}.tmp`, `${JSON.stringify(file, null, 2)}\n`);
  await rename(`${path}.tmp`, path);
  return file;
}

export async function readResults(): Promise<ResultFile[]> {
  const names = (await readdir(RESULTS_DIR).catch(() => [] as string[])).filter((name) => name.endsWith('.json'));
  const results = await Promise.all(names.map(async (name) => JSON.parse(await readFile(join(RESULTS_DIR, name), 'utf8')) as ResultFile));
  return results.sort((a, b) => a.order - b.order || a.benchmark.localeCompare(b.benchmark));
}

/** Rewrites the table of docs/performance.md from every result file. */
export async function updatePerformanceDoc(): Promise<void> {
  const table = renderTable(await readResults());
  const doc = await readFile(PERFORMANCE_DOC, 'utf8').catch(() => '# Performance\n');
  const begin = doc.indexOf(TABLE_BEGIN);
  const end = doc.indexOf(TABLE_END);
  const next =
    begin >= 0 && end > begin
      ? `${doc.slice(0, begin)}${TABLE_BEGIN}\n${table}${doc.slice(end)}`
      : `${doc.trimEnd()}\n\n${TABLE_BEGIN}\n${table}${TABLE_END}\n`;
  await writeFile(PERFORMANCE_DOC, next);
}

export function renderTable(results: readonly ResultFile[]): string {
  const machines = [...new Set(results.map((r) => `${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryGiB} GiB RAM, ${r.machine.kernel}; Node ${r.node}`))];
  const lines = [
    '',
    `Measured on: ${machines.join(' / ') || 'nothing yet'}.`,
    '',
    '| benchmark | figure | measured | baseline (same run) | ratio | target | verdict | run |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const result of results) {
    const run = `${result.date.slice(0, 16).replace('T', ' ')} UTC, ${Math.round(result.durationSeconds)} s`;
    if (result.error) {
      lines.push(`| ${result.benchmark} | ${result.title} | failed: ${escapeCell(result.error)} | | | | **no figures** | ${run} |`);
      continue;
    }
    for (const figure of result.figures) {
      const baseline = figure.baseline ? `${formatValue(figure.baseline.value, figure.unit)} (${figure.baseline.what})` : '–';
      const ratio = figure.ratio === undefined ? '–' : `${figure.ratio.toFixed(2)}×`;
      const verdict = figure.met === undefined ? '–' : figure.met ? 'met' : '**missed**';
      const target = figure.target ? formatTarget(figure.target, figure.unit) : '–';
      lines.push(`| ${result.benchmark} | ${escapeCell(figure.what)} | ${formatValue(figure.value, figure.unit)} | ${escapeCell(baseline)} | ${ratio} | ${target} | ${verdict} | ${run} |`);
    }
  }
  return `${lines.join('\n')}\n\n`;
}

export function formatValue(value: number, unit: Unit): string {
  switch (unit) {
    case 'ms':
      return `${value < 10 ? value.toFixed(value < 1 ? 3 : 2) : value.toFixed(1)} ms`;
    case 's':
      return `${value.toFixed(1)} s`;
    case 'KiB':
      return `${value.toFixed(1)} KiB`;
    case 'MiB':
      return `${value.toFixed(1)} MiB`;
    case 'MiB/s':
      return `${Math.round(value)} MiB/s`;
    case 'kbit/s':
      return `${Math.round(value)} kbit/s`;
    case 'per s':
      return `${Math.round(value).toLocaleString('en-US')}/s`;
    case 'tentacles':
      return `${Math.round(value).toLocaleString('en-US')} tentacles`;
    case 'machines':
      return `${Math.round(value).toLocaleString('en-US')} machines`;
    case 'attempts':
      return `${Math.round(value).toLocaleString('en-US')} attempts`;
  }
}

export function formatTarget(target: Target, unit: Unit): string {
  switch (target.kind) {
    case 'ratio-at-most':
      return `≤ ${target.limit}× baseline`;
    case 'ratio-at-least':
      return target.limit < 1 ? `≥ ${Math.round(target.limit * 100)}% of baseline` : `≥ ${target.limit}× baseline`;
    case 'at-most':
      return `≤ ${formatValue(target.limit, unit)}`;
    case 'at-least':
      return `≥ ${formatValue(target.limit, unit)}`;
  }
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

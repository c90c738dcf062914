/**
 * What a soak run leaves behind: a summary for the terminal, the result in
 * bench/results/soak.json, and the "Last soak result" section of docs/reliability.md
 * rewritten in place (the rest of that page is left as it is).
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { Figure } from '../../bench/support/benchmark.js';
import { writeResult } from '../../bench/support/report.js';
import type { Distribution } from '../../bench/support/stats.js';
import type { Check, SoakOptions, SoakResult } from './run.js';
import { tasksInFlight } from './workload.js';

export const RESULT_HEADING = '## Last soak result';

export function formatSummary(result: SoakResult): string {
  const { environment: env, options, load, throughput, latency, memory, fleet, checks } = result;
  const verdict = (check: Check) => (check.skipped ? 'SKIP' : check.passed ? 'PASS' : 'FAIL');
  const lines = [
    `Soak ${result.passed ? 'PASSED' : 'FAILED'}: ${options.tentacles} polling tentacles in ${processes(fleet.processes)}, ${(load.durationMs / 60_000).toFixed(1)} min of run-script tasks on ${options.batchSize} machines each, ${inFlight(options)} at a time, ${env.store} store`,
    `  Machine:      ${machineLine(result)}, ${env.date}`,
    `  Setup:        registered and connected in ${(result.setup.registerAndConnectMs / 1000).toFixed(1)} s`,
    `  Load:         ${load.tasks} tasks (${load.tasksSucceeded} succeeded), ${load.machineRuns} script runs, ${load.linesReceived} of ${load.linesExpected} log lines`,
    `  Throughput:   ${throughput.tasksPerMinute} tasks/min, ${throughput.machineRunsPerSecond} script runs/s, ${throughput.linesPerSecond} log lines/s`,
    `  Task latency: ${formatMs(latency.taskMs)} (created -> finished, server clock)`,
    `  Script run:   ${formatMs(latency.machineRunMs)} (one machine, start -> finish)`,
    `  Server RSS:   peak ${mib(memory.peakBytes)} MiB`,
    `  V8 heap:      ${heapLine(memory.heapSamples)}`,
    `  Fleet:        ${fleet.relinked} tentacles lost their link during the load; RSS per process ${fleet.rssMiB.join(', ')} MiB`,
    `  [${verdict(checks.tasksFinished)}] no task stuck: ${checks.tasksFinished.detail}`,
    `  [${verdict(checks.logsComplete)}] no line lost: ${checks.logsComplete.detail}`,
    `  [${verdict(checks.memoryStable)}] memory flat: ${checks.memoryStable.detail}`,
  ];
  if (load.problemCount) {
    lines.push(`  Problems (${load.problemCount}, first ${load.problems.length}):`, ...load.problems.map((p) => `    - ${p}`));
  }
  return lines.join('\n');
}

/** The V8 heap figures the memory verdict does not give (it gives the lows of its windows): the highest use, and Buffers at the end. */
function heapLine(samples: SoakResult['memory']['heapSamples']): string {
  const during = samples.filter((s) => s.atSeconds >= 0);
  if (during.length === 0) return 'not sampled';
  return `${Math.max(...during.map((s) => s.heapUsedMiB))} MiB in use at most (its lows are judged below); external (Buffers) ${during.at(-1)!.externalMiB} MiB at the end`;
}

/**
 * Writes bench/results/soak.json in the benchmarks' result format, so that the runner's
 * table (docs/performance.md) can read it alongside theirs: the headline figures as
 * figures, the whole result as details.
 */
export async function writeResultFile(result: SoakResult, durationSeconds: number): Promise<void> {
  const { options, throughput, latency, memory } = result;
  const recordedOptions = { ...options, store: options.store && withoutPassword(options.store) };
  const at = `at ${options.tentacles.toLocaleString('en-US')} tentacles`;
  const figures: Figure[] = [
    { what: `script runs per second ${at}, ${options.batchSize} machines a task, ${inFlight(options)} in flight`, value: throughput.machineRunsPerSecond, unit: 'per s' },
    { what: `p50, task created to finished ${at}`, value: latency.taskMs.p50, unit: 'ms' },
    { what: `p99, task created to finished ${at}`, value: latency.taskMs.p99, unit: 'ms' },
    {
      what: `server RSS growth, mean of the last ${memory.windowMs / 1000} s over the first ${memory.windowMs / 1000} s after warm-up`,
      value: (memory.lastWindowMeanBytes - memory.firstWindowMeanBytes) / 1024,
      unit: 'KiB',
      // A short load's windows fall in the warm-up: no target to meet (see memory.ts).
      ...(memory.judged ? { target: { kind: 'at-most', limit: (memory.tolerance * memory.firstWindowMeanBytes) / 1024 } } : {}),
    },
  ];
  await writeResult({
    benchmark: 'soak',
    title: 'load: polling tentacles running scripts in a loop (npm run soak, docs/reliability.md)',
    order: 100,
    date: result.environment.date,
    node: result.environment.node,
    machine: result.environment.machine,
    durationSeconds,
    params: { tentacles: options.tentacles, minutes: options.durationMs / 60_000, batchSize: options.batchSize, parallel: options.parallel },
    figures,
    details: { ...result, options: recordedOptions },
  });
}

/** A postgres:// URL's password does not belong in a file that may be committed. */
export function withoutPassword(text: string): string {
  return text.replace(/(\/\/[^:/@\s]+):[^@/\s]+@/g, '$1:***@');
}

/** Replaces the section under RESULT_HEADING (up to the next `## ` heading), or appends one. */
export async function updateReliabilityDoc(result: SoakResult, file: string, command: string): Promise<void> {
  const text = await readFile(file, 'utf8');
  const section = `${RESULT_HEADING}\n\n${resultSection(result, withoutPassword(command))}\n`;
  const start = text.indexOf(`${RESULT_HEADING}\n`);
  if (start < 0) {
    await writeFile(file, `${text.trimEnd()}\n\n${section}`);
    return;
  }
  const next = text.indexOf('\n## ', start + RESULT_HEADING.length);
  const rest = next < 0 ? '' : `\n${text.slice(next + 1)}`;
  await writeFile(file, text.slice(0, start) + section + rest);
}

function resultSection(result: SoakResult, command: string): string {
  const { environment: env, options, load, throughput, latency, memory, fleet, checks } = result;
  const row = (name: string, check: Check) => `| ${name} | ${check.skipped ? 'not judged' : check.passed ? 'pass' : '**FAIL**'} | ${check.detail} |`;
  const lines = [
    `\`${command}\` on ${env.date.slice(0, 10)}: **${result.passed ? 'passed' : 'FAILED'}**. ` +
      `${machineLine(result)}; ` +
      `${options.tentacles} tentacles in ${processes(fleet.processes)}, ${(load.durationMs / 60_000).toFixed(1)} min, ` +
      `tasks of ${options.batchSize} machines, ${inFlight(options)} in flight, ${options.linesPerScript} lines per script. ` +
      `The machine was shared with other work, so timings are indicative.`,
    '',
    '| check | result | figures |',
    '| --- | --- | --- |',
    row('no task stuck', checks.tasksFinished),
    row('no line lost', checks.logsComplete),
    row('memory flat', checks.memoryStable),
    '',
    '| figure | value |',
    '| --- | --- |',
    `| register and connect ${options.tentacles} tentacles | ${(result.setup.registerAndConnectMs / 1000).toFixed(1)} s |`,
    `| tasks (succeeded) | ${load.tasks} (${load.tasksSucceeded}) |`,
    `| script runs | ${load.machineRuns} |`,
    `| throughput | ${throughput.tasksPerMinute} tasks/min, ${throughput.machineRunsPerSecond} script runs/s, ${throughput.linesPerSecond} lines/s |`,
    `| task latency, created to finished | ${formatMs(latency.taskMs)} |`,
    `| one machine's script run, start to finish | ${formatMs(latency.machineRunMs)} |`,
    `| server RSS: first window, last window, peak | ${mib(memory.firstWindowMeanBytes)}, ${mib(memory.lastWindowMeanBytes)}, ${mib(memory.peakBytes)} MiB |`,
    `| tentacles that lost their link during the load | ${fleet.relinked} |`,
  ];
  if (load.problemCount) lines.push('', `Problems (${load.problemCount}; the first ${load.problems.length}):`, '', ...load.problems.map((p) => `- ${p}`));
  lines.push('', 'The whole result, RSS samples included, is under `details` in `bench/results/soak.json`.');
  return lines.join('\n');
}

function inFlight(options: SoakOptions): number {
  return tasksInFlight(options.tentacles, options.batchSize, options.parallel);
}

function processes(count: number): string {
  return `${count} fleet process${count === 1 ? '' : 'es'}`;
}

function machineLine({ environment: env }: SoakResult): string {
  const { machine } = env;
  return `${machine.cores} × ${machine.cpu.trim()}, ${machine.memoryGiB} GiB, ${machine.kernel}, Node ${env.node}, ${env.store} store`;
}

function formatMs(d: Distribution): string {
  return `p50 ${d.p50} ms, p90 ${d.p90} ms, p99 ${d.p99} ms, max ${d.max} ms (${d.count})`;
}

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(0);
}

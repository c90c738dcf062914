/**
 * What a soak run leaves behind: a summary for the terminal, the whole result as JSON in
 * bench/results/soak.json, and the "Last soak result" section of docs/reliability.md
 * rewritten in place (the rest of that page is left as it is).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Distribution } from './stats.js';
import type { SoakResult } from './run.js';

export const RESULT_HEADING = '## Last soak result';

export function formatSummary(result: SoakResult): string {
  const { environment: env, options, load, throughput, latency, memory, fleet, checks } = result;
  const verdict = (check: { passed: boolean }) => (check.passed ? 'PASS' : 'FAIL');
  const lines = [
    `Soak ${result.passed ? 'PASSED' : 'FAILED'}: ${options.tentacles} polling tentacles in ${fleet.processes} processes, ${(load.durationMs / 60_000).toFixed(1)} min of run-script tasks on ${options.batchSize} machines each, ${options.parallel} at a time, ${env.store} store`,
    `  Machine:      ${env.cores} × ${env.cpu}, ${env.memoryGiB} GiB, Linux ${env.kernel}, Node ${env.node}, ${env.date}`,
    `  Setup:        registered and connected in ${(result.setup.registerAndConnectMs / 1000).toFixed(1)} s`,
    `  Load:         ${load.tasks} tasks (${load.tasksSucceeded} succeeded), ${load.machineRuns} script runs, ${load.linesReceived} of ${load.linesExpected} log lines`,
    `  Throughput:   ${throughput.tasksPerMinute} tasks/min, ${throughput.machineRunsPerSecond} script runs/s, ${throughput.linesPerSecond} log lines/s`,
    `  Task latency: ${formatMs(latency.taskMs)} (created -> finished, server clock)`,
    `  Script run:   ${formatMs(latency.machineRunMs)} (one machine, start -> finish)`,
    `  Server RSS:   peak ${mib(memory.peakBytes)} MiB`,
    `  Fleet:        ${fleet.disconnects} links lost during the run; RSS per process ${fleet.rssBytes.map(mib).join(', ')} MiB`,
    `  [${verdict(checks.tasksFinished)}] no task stuck: ${checks.tasksFinished.detail}`,
    `  [${verdict(checks.logsComplete)}] no line lost: ${checks.logsComplete.detail}`,
    `  [${verdict(checks.memoryStable)}] memory flat: ${checks.memoryStable.detail}`,
  ];
  if (load.problemCount) {
    lines.push(`  Problems (${load.problemCount}, first ${load.problems.length}):`, ...load.problems.map((p) => `    - ${p}`));
  }
  return lines.join('\n');
}

export async function writeResultFile(result: SoakResult, file: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const options = { ...result.options, store: result.options.store && withoutPassword(result.options.store) };
  await writeFile(file, JSON.stringify({ ...result, options }, null, 2) + '\n');
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
  const row = (name: string, check: { passed: boolean; detail: string }) => `| ${name} | ${check.passed ? 'pass' : '**FAIL**'} | ${check.detail} |`;
  const lines = [
    `\`${command}\` on ${env.date.slice(0, 10)}: **${result.passed ? 'passed' : 'FAILED'}**. ` +
      `${env.cores} × ${env.cpu}, ${env.memoryGiB} GiB, Linux ${env.kernel}, Node ${env.node}, ${env.store} store; ` +
      `${options.tentacles} tentacles in ${fleet.processes} processes, ${(load.durationMs / 60_000).toFixed(1)} min, ` +
      `tasks of ${options.batchSize} machines, ${options.parallel} in flight, ${options.linesPerScript} lines per script. ` +
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
    `| tentacle links lost during the run | ${fleet.disconnects} |`,
  ];
  if (load.problemCount) lines.push('', `Problems (${load.problemCount}; the first ${load.problems.length}):`, '', ...load.problems.map((p) => `- ${p}`));
  lines.push('', 'The whole result, RSS samples included, is in `bench/results/soak.json`.');
  return lines.join('\n');
}

function formatMs(d: Distribution): string {
  return `p50 ${d.p50} ms, p95 ${d.p95} ms, p99 ${d.p99} ms, max ${d.max} ms (${d.count})`;
}

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(0);
}

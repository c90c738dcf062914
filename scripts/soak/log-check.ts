/**
 * The soak's script and what its log must hold afterwards: on every machine exactly the
 * numbered lines the script printed, in order, each once, and a successful end.
 */
import type { LogLineView, TaskView } from '../../src/api/contract.js';

/** A bash script printing `line-1` to `line-<count>` on stdout. */
export function numberedLinesScript(count: number): string {
  return `for i in $(seq 1 ${count}); do echo line-$i; done`;
}

export function expectedLines(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `line-${i + 1}`);
}

export interface TaskLogCheck {
  /** stdout lines stored for the task's machines. */
  linesReceived: number;
  /** One sentence per machine (or line) that is not as expected. */
  problems: string[];
}

/** Checks a finished task: every machine succeeded and its stdout is exactly `expected`. */
export function checkTaskLog(task: TaskView, log: readonly LogLineView[], expected: readonly string[]): TaskLogCheck {
  const problems: string[] = [];
  const stdout = new Map<string, string[]>(task.machines.map((m) => [m.machineId, []]));
  let previousSeq = 0;
  for (const line of log) {
    if (line.seq <= previousSeq) problems.push(`${task.id}: log line ${line.seq} came after ${previousSeq}`);
    previousSeq = line.seq;
    const lines = line.machineId ? stdout.get(line.machineId) : undefined;
    if (!lines) problems.push(`${task.id}: log line ${line.seq} belongs to no machine of the task (${line.machineId})`);
    else if (line.stream === 'stdout') lines.push(line.text);
    else if (line.stream === 'stderr' || line.stream === 'error') problems.push(`${task.id}: unexpected ${line.stream} line: ${line.text}`);
  }
  let linesReceived = 0;
  for (const machine of task.machines) {
    const got = stdout.get(machine.machineId)!;
    linesReceived += got.length;
    const where = `${task.id} on ${machine.machineName}`;
    if (machine.state !== 'Success') problems.push(`${where}: ${machine.state}${machine.error ? ` (${machine.error})` : ''}`);
    const difference = describeDifference(expected, got);
    if (difference) problems.push(`${where}: ${difference}`);
  }
  return { linesReceived, problems };
}

/** Undefined when `got` equals `expected`; otherwise what is missing, repeated or out of order. */
export function describeDifference(expected: readonly string[], got: readonly string[]): string | undefined {
  if (got.length === expected.length && got.every((text, i) => text === expected[i])) return undefined;
  const counts = new Map<string, number>();
  for (const text of got) counts.set(text, (counts.get(text) ?? 0) + 1);
  const missing = expected.filter((text) => !counts.has(text));
  const repeated = [...counts].filter(([, n]) => n > 1).map(([text]) => text);
  const foreign = got.filter((text) => !expected.includes(text));
  const parts = [`expected ${expected.length} lines, got ${got.length}`];
  if (missing.length) parts.push(`missing ${sample(missing)}`);
  if (repeated.length) parts.push(`repeated ${sample(repeated)}`);
  if (foreign.length) parts.push(`unexpected ${sample(foreign)}`);
  if (parts.length === 1) parts.push('out of order');
  return parts.join('; ');
}

function sample(texts: readonly string[]): string {
  return texts.length > 5 ? `${texts.slice(0, 5).join(', ')} and ${texts.length - 5} more` : texts.join(', ');
}

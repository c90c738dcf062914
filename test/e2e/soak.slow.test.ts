/**
 * The soak (`npm run soak`, docs/reliability.md) in miniature, so its code cannot rot:
 * the same server process, fleet processes and checks, with 50 tentacles for 10 s.
 * The memory check is computed but not judged: windows of two seconds right after
 * start-up measure warm-up, not leaks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SOAK_OPTIONS, runSoak } from '../../scripts/soak/run.js';

test('a small soak: every task finishes and every log line arrives, once and in order', async () => {
  const result = await runSoak({
    ...DEFAULT_SOAK_OPTIONS,
    tentacles: 50,
    processes: 2,
    durationMs: 10_000,
    batchSize: 10,
    parallel: 3,
    graceMs: 30_000,
    sampleMs: 500,
    pollMs: 200,
  });
  assert.ok(result.checks.tasksFinished.passed, result.checks.tasksFinished.detail);
  assert.ok(result.checks.logsComplete.passed, `${result.checks.logsComplete.detail}\n${result.load.problems.join('\n')}`);
  assert.ok(result.load.tasks >= 3, `only ${result.load.tasks} tasks ran in 10 s`);
  assert.equal(result.load.linesReceived, result.load.machineRuns * DEFAULT_SOAK_OPTIONS.linesPerScript);
  assert.deepEqual(result.memory.samplesInWindows.map((n) => n > 0), [true, true], 'RSS was sampled in both windows');
  assert.ok(result.memory.heapSamples.length >= 5, `the V8 heap was sampled from /metrics (${result.memory.heapSamples.length} samples)`);
  assert.ok(result.memory.heapSamples.every((s) => s.heapUsedMiB > 1 && s.externalMiB >= 0), JSON.stringify(result.memory.heapSamples.slice(0, 3)));
  assert.equal(result.checks.memoryStable.skipped, true, 'a 10 s load is too short to judge memory');
  assert.ok(result.passed, 'a skipped check does not fail the run');
  assert.equal(result.fleet.relinked, 0, 'no tentacle link dropped');
});

/**
 * The soak's memory verdict (scripts/soak/memory.ts) on synthetic series shaped like a
 * 10,000-Tentacle run: RSS that climbs for a while and then swings with each major GC must
 * pass; growth that goes on, in RSS or in the V8 heap's lows, must fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { heapOfMetrics, judgeMemory, windowsFor, type HeapSample, type RssSample } from '../../scripts/soak/memory.js';

const MiB = 1024 * 1024;
const LOAD_MS = 20 * 60_000;
const load = { startedAt: 0, stoppedAt: LOAD_MS };

/** Every 5 s: a base that may grow, plus a saw-tooth of `swingMiB` over a 100 s GC cycle. */
function series(baseMiB: (atMs: number) => number, swingMiB: number): { rss: RssSample[]; heap: HeapSample[] } {
  const rss: RssSample[] = [];
  const heap: HeapSample[] = [];
  for (let at = 0; at <= LOAD_MS; at += 5000) {
    const cycle = (at % 100_000) / 100_000;
    rss.push({ at, rssBytes: (baseMiB(at) + swingMiB * cycle) * MiB });
    heap.push({ at, heapUsedBytes: (140 + 360 * cycle) * MiB, externalBytes: 5 * MiB });
  }
  return { rss, heap };
}

/** Climbs 150 MiB over the first six minutes, then stays. */
const settling = (at: number) => 1000 + 150 * Math.min(1, at / 360_000);

test('a server that warms up for six minutes and then swings with each GC passes', () => {
  const { rss, heap } = series(settling, 250);
  const verdict = judgeMemory(rss, load, windowsFor(LOAD_MS, 0.05), heap);
  assert.ok(verdict.passed, JSON.stringify(verdict));
  assert.ok(Math.abs(verdict.growth) < 0.05);
  assert.ok(verdict.heap && Math.abs(verdict.heap.growth) < 0.01);
});

test('RSS that keeps growing, 20 MiB a minute (1.5% of it), fails', () => {
  const { rss, heap } = series((at) => settling(at) + (20 * at) / 60_000, 250);
  const verdict = judgeMemory(rss, load, windowsFor(LOAD_MS, 0.05), heap);
  assert.equal(verdict.passed, false);
  assert.ok(verdict.growth > 0.05, String(verdict.growth));
});

test('a V8 heap whose lows keep rising fails even when RSS looks flat', () => {
  const { rss, heap } = series(settling, 250);
  const leaking = heap.map((s) => ({ ...s, heapUsedBytes: s.heapUsedBytes + (2 * s.at * MiB) / 60_000 }));
  const verdict = judgeMemory(rss, load, windowsFor(LOAD_MS, 0.05), leaking);
  assert.equal(verdict.passed, false);
  assert.ok(verdict.heap!.growth > 0.05, String(verdict.heap!.growth));
});

test('the windows are the load\'s middle and last thirds; a short load is not judged', () => {
  assert.deepEqual(windowsFor(600_000, 0.05), { warmupMs: 200_000, windowMs: 200_000, tolerance: 0.05 });
  const { rss } = series(() => 500, 0);
  const short = judgeMemory(rss.filter((s) => s.at <= 60_000), { startedAt: 0, stoppedAt: 60_000 }, windowsFor(60_000, 0.05));
  assert.equal(short.judged, false);
  assert.ok(short.passed);
});

test('the heap figures are read from the server\'s Prometheus page', () => {
  const page = '# HELP nodejs_heap_size_used_bytes x\nnodejs_heap_size_used_bytes 1048576\nnodejs_external_memory_bytes 2048\nnodejs_heap_size_total_bytes 9\n';
  assert.deepEqual(heapOfMetrics(page, 7), { at: 7, heapUsedBytes: 1048576, externalBytes: 2048 });
  assert.equal(heapOfMetrics('process_cpu_seconds_total 1\n', 7), undefined);
});

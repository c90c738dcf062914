/**
 * `npm run fuzz`: the property tests of test/fuzz, run long. FUZZ_RUNS (default 20000)
 * runs per property; sockets and the running API server get a tenth of that (they cost
 * milliseconds per run). FUZZ_ONLY=<substring> picks properties by name. Prints one line
 * per property and a summary; exits 1 if any failed (with fast-check's counterexample and seed).
 */
import { apiGarbageConnections, apiHostileBodies, startApiTarget } from '../test/fuzz/api.props.js';
import { serverConfigFiles, tentacleConfigFiles, tentacleConfigMutations, tentacleConfigRandomJson } from '../test/fuzz/config.props.js';
import { frameAfterEnd, frameOverSockets, frameOversizedAndBadMagic, frameRandomBytes, frameRoundTrip, frameSequence, frameTruncated, verdictProperties } from '../test/fuzz/frame.props.js';
import { proxyHeadRandom, proxyHeadSplits, sseChunking, sseRandomText } from '../test/fuzz/streams.props.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 20_000);
const SLOW = Math.max(1, Math.floor(RUNS / 10));
const ONLY = process.env.FUZZ_ONLY;

type Property = [name: string, runs: number, run: (runs: number) => unknown];

const properties: Property[] = [
  ['frame: round trip in random pieces', RUNS, frameRoundTrip],
  ['frame: random bytes', RUNS, frameRandomBytes],
  ['frame: truncated', RUNS, frameTruncated],
  ['frame: oversized length, wrong preamble, encode limit', RUNS, frameOversizedAndBadMagic],
  ['frame: frames back to back then garbage', RUNS, frameSequence],
  ['frame: read after end', SLOW, frameAfterEnd],
  ['verdict: round trip and random bytes', RUNS, verdictProperties],
  ['frame: over loopback sockets', SLOW, frameOverSockets],
  ['tentacle config: random JSON', RUNS, tentacleConfigRandomJson],
  ['tentacle config: one field broken', RUNS, tentacleConfigMutations],
  ['tentacle config: files', SLOW, tentacleConfigFiles],
  ['server config: --config files', SLOW, serverConfigFiles],
  ['sse: events in random pieces', RUNS, sseChunking],
  ['sse: random text in random pieces', RUNS, sseRandomText],
  ['proxy head: random splits', RUNS, proxyHeadSplits],
  ['proxy head: random bytes', RUNS, proxyHeadRandom],
];

async function main(): Promise<void> {
  const results: Array<{ name: string; runs: number; ms: number; error?: string }> = [];
  const run = async (name: string, runs: number, body: () => unknown) => {
    if (ONLY && !name.includes(ONLY)) return;
    const started = Date.now();
    try {
      await body();
      results.push({ name, runs, ms: Date.now() - started });
      console.log(`ok    ${name}  (${runs} runs, ${Date.now() - started} ms)`);
    } catch (err) {
      results.push({ name, runs, ms: Date.now() - started, error: (err as Error).message });
      console.log(`FAIL  ${name}  (${Date.now() - started} ms)\n${(err as Error).message}\n`);
    }
  };
  for (const [name, runs, body] of properties) await run(name, runs, () => body(runs));

  if (!ONLY || 'api'.includes(ONLY) || ONLY.startsWith('api')) {
    const h = await startApiTarget();
    try {
      let statuses = new Map<number, number>();
      await run('api: hostile bodies (tasks, machines, files)', SLOW, async () => {
        statuses = await apiHostileBodies(h, SLOW);
      });
      if (statuses.size) console.log(`      statuses seen: ${[...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}x${n}`).join(' ')}`);
      await run('api: garbage and cut-off HTTP', SLOW, () => apiGarbageConnections(h, SLOW));
    } finally {
      await h.close();
    }
  }

  const failed = results.filter((r) => r.error);
  const total = results.reduce((n, r) => n + r.runs, 0);
  const ms = results.reduce((n, r) => n + r.ms, 0);
  console.log(`\n${results.length - failed.length}/${results.length} properties passed, ${total} runs in ${(ms / 1000).toFixed(1)} s (FUZZ_RUNS=${RUNS}).`);
  if (failed.length) {
    console.log(`Failed: ${failed.map((f) => f.name).join('; ')}`);
    process.exitCode = 1;
  }
}

await main();

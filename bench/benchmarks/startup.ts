/**
 * startup: how long the command-line programs take to start and finish a trivial command,
 * against `node -e 0` in the same run (the least any Node program costs on this machine).
 *
 * Measured: `reef --help` and `tentacle version` as installed users run them (bin/*.js, which
 * load the compiled dist/ with plain node), and the single executable Tentacle
 * (dist/packages/reef-tentacle-<version>-linux-x64 from `npm run package:tentacle`) when it has been
 * built. The commands run in interleaved rounds, so load from elsewhere on a shared machine
 * hits all of them alike. For each run: wall time from exec to exit, and CPU time (user +
 * sys, every thread) as the kernel accounts it to the finished child; medians reported.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildDist, distState } from '../../scripts/build.js';
import { packageVersion, PACKAGES_DIR, REPO } from '../../scripts/package/build-info.js';
import type { Benchmark, Figure } from '../support/benchmark.js';
import { distribution } from '../support/stats.js';

const TARGET_RATIO = 1.5;

/**
 * Runs argv once under bash's `time` (as the tentacle-executable benchmark does, so their
 * figures compare): wall time from fork to exit, and user + system CPU time of the child
 * and every thread it ran, from getrusage.
 */
function timeOnce(argv: readonly string[]): { wallMs: number; cpuMs: number } {
  const script = `TIMEFORMAT='%3R %3U %3S'; time "$@" >/dev/null 2>&1 || echo "exit $?" >&2`;
  const result = spawnSync('bash', ['-c', script, 'startup', ...argv], { encoding: 'utf8', timeout: 60_000 });
  const lines = result.stderr.trim().split('\n');
  const failed = lines.find((line) => line.startsWith('exit '));
  if (result.error || result.status !== 0 || failed) throw new Error(`${argv.join(' ')} failed: ${result.error?.message ?? failed ?? result.stderr}`);
  const [wall, user, system] = lines.at(-1)!.split(' ').map(Number) as [number, number, number];
  if (![wall, user, system].every(Number.isFinite)) throw new Error(`could not read the time of ${argv.join(' ')}: ${result.stderr}`);
  return { wallMs: wall * 1000, cpuMs: (user + system) * 1000 };
}

const benchmark: Benchmark = {
  name: 'startup',
  order: 8,
  title: 'CLI start-up: reef --help and tentacle version against node -e 0',
  timeoutMs: 5 * 60_000,
  async run(context) {
    const rounds = context.param('rounds', 20);
    const dist = await distState();
    if (dist.state !== 'fresh') {
      context.log(`building dist/ first (${dist.state === 'missing' ? 'none yet' : `${dist.newer} is newer`})`);
      await buildDist();
    }
    const node = process.execPath;
    const commands: Record<string, readonly string[]> = {
      'node -e 0': [node, '-e', '0'],
      'reef --help': [node, join(REPO, 'bin/reef.js'), '--help'],
      'tentacle version': [node, join(REPO, 'bin/tentacle.js'), 'version'],
    };
    // The name scripts/package/tentacle-executable.ts gives it (tentacleExecutableName).
    const sea = join(PACKAGES_DIR, `reef-tentacle-${packageVersion()}-linux-x64`);
    if (existsSync(sea)) commands['tentacle version (single executable)'] = [sea, 'version'];
    else context.log(`${sea} is not there (npm run package:tentacle builds it): measuring without it`);

    const names = Object.keys(commands);
    const wall = Object.fromEntries(names.map((name) => [name, [] as number[]]));
    const cpu = Object.fromEntries(names.map((name) => [name, [] as number[]]));
    for (const name of names) timeOnce(commands[name]!); // warm-up: files into the page cache
    context.log(`${rounds} rounds of ${names.join(', ')}`);
    for (let round = 0; round < rounds; round++) {
      for (const name of names) {
        const sample = timeOnce(commands[name]!);
        wall[name]!.push(sample.wallMs);
        cpu[name]!.push(sample.cpuMs);
      }
    }
    const median = (samples: number[]) => distribution(samples).p50;
    const base = { wall: median(wall['node -e 0']!), cpu: median(cpu['node -e 0']!) };
    const figures: Figure[] = [
      { what: 'node -e 0, median wall time', value: base.wall, unit: 'ms' },
      { what: 'node -e 0, median CPU time (user + sys)', value: base.cpu, unit: 'ms' },
    ];
    for (const name of names.slice(1)) {
      const from = name.includes('single executable') ? '' : ' (dist/)';
      figures.push(
        { what: `${name}${from}, median wall time`, value: median(wall[name]!), unit: 'ms', baseline: { what: 'node -e 0', value: base.wall }, target: { kind: 'ratio-at-most', limit: TARGET_RATIO } },
        { what: `${name}${from}, median CPU time (user + sys)`, value: median(cpu[name]!), unit: 'ms', baseline: { what: 'node -e 0', value: base.cpu }, target: { kind: 'ratio-at-most', limit: TARGET_RATIO } },
      );
    }
    return {
      figures,
      details: {
        rounds,
        commands: Object.fromEntries(Object.entries(commands).map(([name, argv]) => [name, argv.map((arg) => arg.replace(`${REPO}/`, ''))])),
        wallMs: Object.fromEntries(names.map((name) => [name, distribution(wall[name]!)])),
        cpuMs: Object.fromEntries(names.map((name) => [name, distribution(cpu[name]!)])),
      },
    };
  },
};

export default benchmark;

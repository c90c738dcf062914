/**
 * tentacle-executable: the single executable Tentacle's size and cold start. Builds it
 * (linux-x64 with and without V8 code cache, linux-arm64) into a temp folder, then times
 * `version` against `node -e 0` in the same rounds: each round runs every command once, in
 * turn, so a busy moment of the machine hits all of them alike. Wall and CPU time (user +
 * system) of each run come from bash's `time` (getrusage of the child), medians reported.
 * `bin/tentacle.js version` (what a clone or the npm package runs) is timed alongside.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildTentacleExecutable, type TentacleExecutable } from '../../scripts/package/tentacle-executable.js';
import type { Benchmark, Figure } from '../support/benchmark.js';
import { REPO } from '../support/report.js';
import { distribution } from '../support/stats.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** Times one command with bash's `time` builtin: [wall ms, cpu ms]. */
async function timeOnce(command: readonly string[]): Promise<[number, number]> {
  const quoted = command.map((word) => `'${word.replace(/'/g, `'\\''`)}'`).join(' ');
  const { stderr } = await run('bash', ['-c', `TIMEFORMAT='%3R %3U %3S'; time ${quoted} >/dev/null 2>&1`], { timeout: 60_000 });
  const [wall, user, system] = stderr.trim().split('\n').at(-1)!.split(' ').map(Number) as [number, number, number];
  if (![wall, user, system].every(Number.isFinite)) throw new Error(`could not read the time of ${quoted}: ${stderr}`);
  return [wall * 1000, (user + system) * 1000];
}

const benchmark: Benchmark = {
  name: 'tentacle-executable',
  order: 9,
  title: 'the single executable Tentacle: size and cold start of "version"',
  timeoutMs: 6 * 60_000,
  async run(context) {
    const rounds = context.param('rounds', 15);
    const work = await mkdtemp(join(tmpdir(), 'reef-bench-sea-'));
    context.defer(() => rm(work, { recursive: true, force: true }));

    context.log('building linux-x64 (code cache), linux-x64 (no code cache), linux-arm64');
    const withCache = await buildTentacleExecutable({ arch: 'x64', outDir: join(work, 'cache'), codeCache: true });
    const withoutCache = await buildTentacleExecutable({ arch: 'x64', outDir: join(work, 'plain'), codeCache: false });
    const arm64 = await buildTentacleExecutable({ arch: 'arm64', outDir: join(work, 'arm64') });

    const commands = {
      node: [process.execPath, '-e', '0'],
      withCache: [withCache.path, 'version'],
      withoutCache: [withoutCache.path, 'version'],
      bin: [process.execPath, join(REPO, 'bin/tentacle.js'), 'version'],
    } as const;
    type Name = keyof typeof commands;
    const samples = Object.fromEntries(Object.keys(commands).map((name) => [name, { wall: [] as number[], cpu: [] as number[] }])) as Record<Name, { wall: number[]; cpu: number[] }>;
    for (const command of Object.values(commands)) await timeOnce(command); // warm the page cache
    for (let round = 0; round < rounds; round++) {
      for (const name of Object.keys(commands) as Name[]) {
        const [wall, cpu] = await timeOnce(commands[name]);
        samples[name].wall.push(wall);
        samples[name].cpu.push(cpu);
      }
    }
    const median = (name: Name, kind: 'wall' | 'cpu') => distribution(samples[name][kind]).p50;
    const startFigure = (name: Name, kind: 'wall' | 'cpu', what: string, target?: number): Figure => ({
      what: `${what}, ${kind === 'wall' ? 'wall' : 'CPU (user + system)'}, median of ${rounds}`,
      value: median(name, kind),
      unit: 'ms',
      baseline: { what: `node -e 0, ${kind}`, value: median('node', kind) },
      ...(target ? { target: { kind: 'ratio-at-most' as const, limit: target } } : {}),
    });
    const sizeFigure = (built: TentacleExecutable, what: string): Figure => ({ what, value: built.bytes / MiB, unit: 'MiB' });

    return {
      figures: [
        sizeFigure(withCache, 'size, linux-x64 (with code cache)'),
        sizeFigure(withoutCache, 'size, linux-x64 (without code cache)'),
        sizeFigure(arm64, 'size, linux-arm64 (without code cache: built for another architecture)'),
        startFigure('withCache', 'wall', '`version` from the linux-x64 executable with code cache', 1.5),
        startFigure('withCache', 'cpu', '`version` from the linux-x64 executable with code cache', 1.5),
        startFigure('withoutCache', 'wall', '`version` from the linux-x64 executable without code cache'),
        startFigure('withoutCache', 'cpu', '`version` from the linux-x64 executable without code cache'),
        startFigure('bin', 'wall', '`version` from bin/tentacle.js'),
        startFigure('bin', 'cpu', '`version` from bin/tentacle.js'),
      ],
      details: {
        builds: { withCache, withoutCache, arm64 },
        samples: Object.fromEntries(Object.entries(samples).map(([name, s]) => [name, { wall: distribution(s.wall), cpu: distribution(s.cpu) }])),
        commands: Object.fromEntries(Object.entries(commands).map(([name, command]) => [name, command.join(' ')])),
      },
    };
  },
};

export default benchmark;

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { RUN_MARKER, runTracked, spawnTracked, stopAll, trackedTempDir } from './processes.js';

const REPO = join(import.meta.dirname, '../..');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  return !alive(pid);
}

/** Starts leftover-owner.ts and reads the grandchild's pid and the temp folder it printed. */
async function startOwner(mode: 'wait' | 'exit') {
  const owner = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'leftover-owner.ts'), mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(owner.stdout!.setEncoding('utf8'), 'data')) as [string];
  const [pid, dir] = line.trim().split(' ');
  return { owner, grandchild: Number(pid), dir: dir! };
}

test('stopAll kills each child with its whole process group and removes the temp folders', async () => {
  const dir = await trackedTempDir('reef-processes-test-');
  const child = spawnTracked('sh', ['-c', 'sleep 300 & echo $!; wait'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const [line] = (await once(child.stdout!.setEncoding('utf8'), 'data')) as [string];
  const grandchild = Number(line.trim());
  assert.ok(alive(grandchild));
  await stopAll();
  assert.ok(await gone(grandchild), 'the grandchild in the group is gone');
  assert.equal(existsSync(dir), false);
});

for (const [how, end] of [
  ['SIGTERM', (owner: ReturnType<typeof spawn>) => owner.kill('SIGTERM')],
  ['SIGINT', (owner: ReturnType<typeof spawn>) => owner.kill('SIGINT')],
  ['process.exit', () => {}],
] as const) {
  test(`a test process ended by ${how} takes its children's groups and temp folders with it`, async () => {
    const { owner, grandchild, dir } = await startOwner(how === 'process.exit' ? 'exit' : 'wait');
    assert.ok(alive(grandchild) && existsSync(dir));
    const exited = once(owner, 'exit');
    end(owner);
    await exited;
    assert.ok(await gone(grandchild), 'the grandchild is gone');
    assert.equal(existsSync(dir), false, 'the temp folder is removed');
  });
}

test('runTracked kills the whole group at its timeout', async () => {
  const started = Date.now();
  const result = await runTracked('sh', ['-c', 'sleep 300 & echo $!; wait'], { timeoutMs: 500 });
  assert.equal(result.code, null);
  assert.ok(await gone(Number(result.stdout.trim())), 'the grandchild is gone');
  assert.ok(Date.now() - started < 10_000);
});

test('check-leftovers fails and names a live process of the run, kills it, and ignores other runs', async () => {
  const check = (run: string) => runTracked(process.execPath, ['--import', 'tsx', join(REPO, 'scripts/check-leftovers.ts')], { env: { ...process.env, [RUN_MARKER]: run }, timeoutMs: 60_000 });
  const run = `check-test-${process.pid}`;
  // Started as another run's process (not tracked here), so only the check can end it.
  const stray = spawn('sleep', ['300'], { env: { ...process.env, [RUN_MARKER]: run }, stdio: 'ignore' });
  try {
    const other = await check(`${run}-other`);
    assert.equal(other.code, 0, other.stderr);
    assert.ok(alive(stray.pid!), 'a process of another run is left alone');
    const found = await check(run);
    assert.equal(found.code, 1);
    assert.match(found.stderr, new RegExp(`1 process\\(es\\) of test run ${run} outlived the suite`));
    assert.match(found.stderr, new RegExp(`pid ${stray.pid}: sleep 300`));
    assert.ok(await gone(stray.pid!), 'the leftover was killed');
  } finally {
    stray.kill('SIGKILL');
  }
});

/**
 * A stand-in for a test file, for processes.test.ts: starts a tracked child whose group
 * holds a grandchild, makes a tracked temp folder, prints `<grandchild pid> <folder>`,
 * then waits to be ended (by a signal, or by process.exit when given `exit`).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnTracked, trackedTempDir } from './processes.js';

const dir = await trackedTempDir('reef-leftover-owner-');
await writeFile(join(dir, 'data'), 'x');
const child = spawnTracked('sh', ['-c', 'sleep 300 & echo $!; wait'], { stdio: ['ignore', 'pipe', 'ignore'] });
child.stdout!.setEncoding('utf8').once('data', (pid: string) => {
  console.log(`${pid.trim()} ${dir}`);
  if (process.argv[2] === 'exit') setTimeout(() => process.exit(3), 100);
});
setInterval(() => {}, 1000);

/** `reef machines rotate-certificate`: its options are checked before anything is sent. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REEF_BIN } from '../support/built.js';
import { runTracked } from '../support/processes.js';

// Nothing listens there: an argument error must come before any connection.
const env = { ...process.env, REEF_SERVER: 'https://127.0.0.1:9', REEF_API_KEY: 'API-unused', REEF_SERVER_THUMBPRINT: 'AB'.repeat(32) };
const rotate = (args: string[]) => runTracked(process.execPath, [REEF_BIN, 'machines', 'rotate-certificate', ...args], { env, timeoutMs: 30_000 });

test('refuses a missing or mixed target and a bad --max-parallel, naming the option', async () => {
  const none = await rotate([]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /Say which machines: --environment NAME/);
  const mixed = await rotate(['--all', '--machine', 'web-01']);
  assert.equal(mixed.code, 1);
  assert.match(mixed.stderr, /--all targets every machine: use it without/);
  const word = await rotate(['--all', '--max-parallel', 'ten']);
  assert.equal(word.code, 1);
  assert.match(word.stderr, /--max-parallel must be a whole number above 0, not "ten"/);
  const zero = await rotate(['--all', '--max-parallel', '0']);
  assert.equal(zero.code, 1);
  assert.match(zero.stderr, /--max-parallel/);
  const help = await runTracked(process.execPath, [REEF_BIN, 'machines', 'rotate-certificate', '--help'], { env, timeoutMs: 30_000 });
  assert.match(help.stdout, /--all/);
  assert.match(help.stdout, /--max-parallel <n>/);
});

/** `reef machines upgrade`: what the command line alone can get wrong is said before any server is asked. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cli } from '../e2e/harness.js';

describe('reef machines upgrade: arguments', () => {
  // No server: an argument error must come first, not "no server given".
  const env = { REEF_SERVER: '', REEF_API_KEY: '' };
  const cases: Array<[string[], RegExp]> = [
    [[], /Say which machines: --environment NAME \[--role ROLE\], --worker-pool NAME, or --machine NAME/],
    [['--all', '--machine', 'web-01'], /--all targets every machine: use it without --environment, --role, --worker-pool or --machine/],
    [['--machine', 'web-01', '--rollback-after', '5s'], /--rollback-after must be between 10s and 1d, not "5s"/],
    [['--machine', 'web-01', '--rollback-after', 'soon'], /--rollback-after takes a duration such as 30m/],
    [['--machine', 'web-01', '--max-parallel', '0'], /--max-parallel must be a whole number above 0, not "0"/],
    [['--role', 'web'], /--role needs --environment/],
  ];
  for (const [args, expected] of cases) {
    test(`refuses ${args.join(' ') || 'no target'}`, async () => {
      const result = await cli('reef', ['machines', 'upgrade', ...args], env);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, expected);
    });
  }

  test('is listed under reef machines, with its options', async () => {
    const help = await cli('reef', ['machines', 'upgrade', '--help']);
    assert.equal(help.code, 0);
    for (const option of ['--all', '--version <version>', '--max-parallel <n>', '--rollback-after <duration>', '--environment <name>', '--worker-pool <name>', '--machine <name>', '--follow']) {
      assert.ok(help.stdout.includes(option), `${option} in:\n${help.stdout}`);
    }
  });
});

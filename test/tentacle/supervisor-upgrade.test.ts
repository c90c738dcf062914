/**
 * The supervised service's part in a Tentacle upgrade: an agent exiting with the upgrade
 * code (75) is restarted at once, not counted as a crash; SIGUSR2 (from the upgrade
 * watcher after a rollback) restarts the agent now, cutting short a crash backoff.
 */
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { isProcessAlive } from '../../src/tentacle/pid-file.js';
import { RESTART_NOW_SIGNAL, UPGRADE_RESTART_EXIT_CODE } from '../../src/tentacle/supervisor.js';
import { tentacleCli, type TentacleCli } from '../cli/tentacle-cli.js';
import { waitFor } from '../e2e/harness.js';

/** Stands in for `tentacle agent`: exits 75 once if asked, crashes while FAKE_DIR/crash exists, else runs. */
const FAKE_AGENT = `
import { existsSync, writeFileSync } from 'node:fs';
const { FAKE_DIR } = process.env;
writeFileSync(FAKE_DIR + '/agent.pid', String(process.pid));
console.log('fake agent up ' + Date.now());
if (!existsSync(FAKE_DIR + '/upgraded')) {
  writeFileSync(FAKE_DIR + '/upgraded', '');
  setTimeout(() => process.exit(${UPGRADE_RESTART_EXIT_CODE}), 100);
}
if (existsSync(FAKE_DIR + '/crash')) process.exit(3);
process.on('SIGTERM', () => process.exit(0));
setInterval(() => {}, 1000);
`;

describe('supervised service: restarts for an upgrade', () => {
  let cli: TentacleCli;
  let env: NodeJS.ProcessEnv;
  let home: string;
  let supervisor: number | undefined;
  const logText = () => readFile(join(home, 'logs', 'tentacle.log'), 'utf8').catch(() => '');
  const starts = async () => [...(await logText()).matchAll(/fake agent up (\d+)/g)].map((m) => Number(m[1]));

  before(async () => {
    cli = await tentacleCli();
    await cli.ok(['create-instance', '--instance', 'Up']);
    home = join(cli.root, 'instances', 'Up');
    const agentFile = join(cli.root, 'fake-agent.mjs');
    await writeFile(agentFile, FAKE_AGENT);
    env = { REEF_TENTACLE_AGENT_CMD: JSON.stringify([process.execPath, agentFile]), FAKE_DIR: cli.root };
  });

  after(async () => {
    await cli.run(['service', '--instance', 'Up', '--stop'], env);
    if (supervisor !== undefined && isProcessAlive(supervisor)) process.kill(supervisor, 'SIGKILL');
    await cli.close();
  });

  test('exit code 75 restarts the agent at once; SIGUSR2 cuts a crash backoff short', async () => {
    await cli.ok(['service', '--instance', 'Up', '--install', '--start'], env);
    supervisor = Number((await readFile(join(home, 'tentacle.pid'), 'utf8')).trim());
    const [first, second] = await waitFor('the agent to restart after exiting 75', async () => ((await starts()).length >= 2 ? await starts() : undefined), 15_000);
    // 100 ms of life, then a restart without the crash backoff (500 ms and up).
    assert.ok(second! - first! < 450, `restarted ${second! - first!} ms after the first start`);
    assert.match(await logText(), /agent restarting \(upgrade or rollback\)/);
    assert.doesNotMatch(await logText(), /agent exited; restarting/);

    // A crash loop: the backoff grows (0.5, 1, 2, 4 s ...).
    await writeFile(join(cli.root, 'crash'), '');
    process.kill(Number(await readFile(join(cli.root, 'agent.pid'), 'utf8')), 'SIGKILL');
    await waitFor('four crashes', async () => (await starts()).length >= 2 + 4, 20_000);
    await rm(join(cli.root, 'crash'));
    const before = (await starts()).length;
    const asked = Date.now();
    process.kill(supervisor, RESTART_NOW_SIGNAL);
    const restarted = await waitFor('the agent started on SIGUSR2', async () => {
      const all = await starts();
      return all.length > before ? all.at(-1) : undefined;
    }, 15_000);
    assert.ok(restarted - asked < 1000, `started ${restarted - asked} ms after SIGUSR2 (the backoff was at least 3 s)`);
    await sleep(500);
    assert.ok(isProcessAlive(Number(await readFile(join(cli.root, 'agent.pid'), 'utf8'))), 'the agent runs');
    assert.ok(isProcessAlive(supervisor, 'supervise'), 'the supervisor still runs');
  });
});

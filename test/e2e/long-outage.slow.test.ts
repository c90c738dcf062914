/**
 * Long outages on a real network, end to end with the real processes and the default
 * heartbeat: `reef server run` and a polling `tentacle agent` each in a network namespace,
 * a veth between them (10.232.15.0/30), the branch's line cut with nftables (everything
 * dropped both ways) in the middle of a script.
 *
 * - Cut for 3 minutes (the server's lost-contact limit is the default 30 minutes): the
 *   machine run shows "lost contact since" while it waits, and once the line is back the
 *   task ends Success with every line once, in order.
 * - Cut for longer than the task's own short lost-contact limit: the run fails for lost
 *   contact; when the line is back the Tentacle still holds the finished script, and its
 *   late lines and real exit code are shown as a late report on the failed run.
 *
 * Slow suite: minutes of outage. Needs root, iproute2 and nftables (skipped with the
 * reason otherwise); the namespaces are removed after the file, also when it fails.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { TaskView } from '../../src/api/contract.js';
import { REEF_BIN, TENTACLE_BIN } from '../support/built.js';
import { netnsUnavailable, Topology, type Namespace } from '../support/netns.js';
import { startServer, stopAll, tempDir, waitFor, type ServerProcess } from './harness.js';

const PREFIX = 'rfo';
const unavailable = netnsUnavailable(PREFIX);
const SERVER_IP = '10.232.15.1';
const BRANCH_IP = '10.232.15.2';
const MACHINE = 'branch-1';
/** The longest the Tentacle's reconnect backoff waits between attempts (comms/backoff.ts), plus a margin. */
const RECONNECT_MS = 90_000;

interface Followed {
  type: string;
  stream?: string;
  text?: string;
  task?: TaskView;
}

describe('a branch whose line is cut for minutes during a script', { skip: unavailable && `skipped: ${unavailable}` }, () => {
  let topology: Topology;
  let serverNs: Namespace;
  let branchNs: Namespace;
  let server: ServerProcess;
  let tentacleEnv: NodeJS.ProcessEnv;

  const tentacle = (args: string[]) => branchNs.ok(process.execPath, [TENTACLE_BIN, ...args], { env: tentacleEnv, timeoutMs: 60_000 });
  /** `reef ...` on the server host, as its administrator would run it. */
  const reef = (args: string[], timeoutMs = 60_000) =>
    serverNs.run(process.execPath, [REEF_BIN, ...args], { env: { ...process.env, ...server.env(server.adminKey!), REEF_LOG_LEVEL: 'warn' }, timeoutMs });
  const show = async (id: string): Promise<TaskView> => JSON.parse((await reef(['tasks', 'show', id, '--json'])).stdout) as TaskView;
  /** Every line of a finished task's log, read with `reef tasks watch --json`. */
  const logOf = async (id: string): Promise<Followed[]> =>
    (await reef(['tasks', 'watch', id, '--json'], 120_000)).stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Followed);
  const online = async () => {
    const shown = await reef(['machines', 'show', MACHINE, '--json']);
    return (JSON.parse(shown.stdout) as { online?: boolean }).online === true;
  };
  const cut = () => branchNs.nft(`table inet ${PREFIX} {\n  chain input { type filter hook input priority filter; policy drop; }\n  chain output { type filter hook output priority filter; policy drop; }\n}`);
  const mend = () => branchNs.nft('');
  const numbered = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}`);

  async function runScript(body: string, extra: string[] = []): Promise<string> {
    const started = await reef(['tasks', 'run-script', '--machine', MACHINE, '--script', body, ...extra]);
    assert.equal(started.code, 0, started.stderr);
    return started.stdout.trim();
  }

  /** Once the script runs, a few seconds of its output reach the server before the cut. */
  async function firstLines(id: string): Promise<void> {
    await waitFor('the script to start', async () => ((await show(id)).machines[0]?.state === 'Running' ? true : undefined), 60_000);
    await sleep(8000);
  }

  before(async () => {
    topology = Topology.create(PREFIX);
    serverNs = await topology.namespace('server');
    branchNs = await topology.namespace('branch');
    await topology.link(serverNs, `${SERVER_IP}/30`, branchNs, `${BRANCH_IP}/30`);
    server = await startServer({
      dataDir: await tempDir('outage-server'),
      httpsPort: 8443,
      commsPort: 10943,
      name: 'outage-server',
      command: ['ip', 'netns', 'exec', serverNs.name, process.execPath, REEF_BIN],
      extraArgs: ['--host', '0.0.0.0'],
    });
    assert.ok(server.adminKey, 'the first run prints an admin key');
    tentacleEnv = { ...process.env, REEF_TENTACLE_ROOT: await tempDir('outage-tentacles'), REEF_LOG_LEVEL: 'warn' };
    await tentacle(['create-instance', '--instance', 'Branch']);
    await tentacle(['new-certificate', '--instance', 'Branch']);
    await tentacle([
      'register-with', '--instance', 'Branch', '--server', `https://${SERVER_IP}:8443`, '--server-thumbprint', server.thumbprint, '--apiKey', server.adminKey!,
      '--comms-style', 'TentacleActive', '--server-comms-port', '10943', '--environment', 'Branch', '--role', 'till', '--name', MACHINE,
    ]);
    branchNs.spawn(process.execPath, [TENTACLE_BIN, 'agent', '--instance', 'Branch'], { env: tentacleEnv });
    await waitFor('the Tentacle to connect', online, 60_000);
  });

  after(async () => {
    try {
      await stopAll();
    } finally {
      await topology?.destroy();
    }
  });

  test('cut for 3 minutes: "lost contact since" while it waits, then Success with every line once, in order', async () => {
    const LINES = 200; // one a second: the script outlasts the cut
    const id = await runScript(`for i in $(seq 1 ${LINES}); do echo "line $i"; sleep 1; done`);
    await firstLines(id);
    await cut();
    const cutAt = Date.now();
    const waiting = await waitFor('the run to show lost contact', async () => {
      const m = (await show(id)).machines[0]!;
      return m.lostContactSince ? m : undefined;
    }, 60_000);
    assert.equal(waiting.state, 'Running');
    const shown = await reef(['tasks', 'show', id]);
    assert.match(shown.stdout, new RegExp(`\\n${MACHINE}: lost contact since ${waiting.lostContactSince!.replace(/\./g, '\\.')}\\n`));
    await sleep(Math.max(0, cutAt + 180_000 - Date.now()));
    assert.equal((await show(id)).state, 'Running', 'not failed for lost contact within the 30-minute limit');
    await mend();
    await waitFor('the Tentacle to reconnect', online, RECONNECT_MS);

    const log = await logOf(id);
    const task = log.at(-1)?.task;
    assert.equal(task?.state, 'Success', JSON.stringify(task));
    assert.equal(task.machines[0]!.exitCode, 0);
    assert.equal(task.machines[0]!.lostContactSince, null);
    assert.deepEqual(log.filter((l) => l.type === 'log' && l.stream === 'stdout').map((l) => l.text), numbered(LINES), 'every line once, in order');
    const notes = log.filter((l) => l.stream === 'info').map((l) => l.text ?? '');
    assert.ok(notes.some((t) => t.startsWith('Lost contact with the Tentacle at ')), notes.join('\n'));
    assert.ok(notes.some((t) => t.startsWith('Contact with the Tentacle is back after ')), notes.join('\n'));
  });

  test('back after the task\'s lost-contact limit: Failed for lost contact, then a late report with the late lines and the real exit code', async () => {
    const LINES = 60;
    const id = await runScript(`for i in $(seq 1 ${LINES}); do echo "line $i"; sleep 1; done; exit 0`, ['--lost-contact-limit', '20']);
    await firstLines(id);
    await cut();
    const failed = await waitFor('the run to fail for lost contact', async () => {
      const t = await show(id);
      return t.state === 'Running' ? undefined : t;
    }, 120_000);
    assert.equal(failed.state, 'Failed');
    assert.match(failed.machines[0]!.error ?? '', /^Lost contact with Tentacle "branch-1" at .* did not come back within 20 s \(the lost-contact limit\)/);
    assert.equal(failed.machines[0]!.lateReport, null);
    // The script ends on the Tentacle during the cut; the line comes back after that.
    await sleep(LINES * 1000);
    await mend();
    await waitFor('the Tentacle to reconnect', online, RECONNECT_MS);
    const reported = await waitFor('the late report', async () => {
      const t = await show(id);
      return t.machines[0]!.lateReport ? t : undefined;
    }, 60_000);
    assert.equal(reported.state, 'Failed', 'the task keeps its result');
    const late = reported.machines[0]!.lateReport!;
    assert.deepEqual([late.state, late.exitCode], ['Success', 0], 'the real outcome');
    assert.ok(late.lines > 0 && late.lines < LINES, `${late.lines} late lines`);
    const shown = await reef(['tasks', 'show', id]);
    assert.match(shown.stdout, new RegExp(`\\n${MACHINE}: late report .*: the script ended Success \\(exit code 0\\); ${late.lines} late lines in the log\\n`));
    const log = await logOf(id);
    assert.deepEqual(log.filter((l) => l.type === 'log' && l.stream === 'stdout').map((l) => l.text), numbered(LINES), 'every line once, in order');
    assert.ok(log.some((l) => (l.text ?? '').startsWith('Late report: the Tentacle came back after this machine run had failed for lost contact')));
  });
});

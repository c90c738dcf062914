/**
 * A branch office on a slow line, end to end with the real processes and the default
 * heartbeat (10 s interval, 15 s timeout): `reef server run` and a polling `tentacle agent`
 * each in a network namespace, a veth between them (10.232.3.0/30) shaped to 256 kbit/s
 * each way with `tc tbf`.
 *
 * - A 1 MiB push (about 35 s on this line) completes with no reconnect and no heartbeat
 *   verdict. Before liveness was judged by progress, the PING's answer queued behind the
 *   push's 1 MiB HTTP/2 window (32 s) and the link was cut after 15 s, then resumed.
 * - The line cut with nftables (everything dropped) for longer than the heartbeat window:
 *   both sides notice within the timeout (plus a margin), and the Tentacle reconnects once
 *   the line is back.
 *
 * Slow suite: these take minutes with the default timings. Needs root, iproute2, tc and
 * nftables (skipped with the reason otherwise); the namespaces are removed after the file,
 * also when it fails.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { REEF_BIN, TENTACLE_BIN } from '../support/built.js';
import { netnsUnavailable, Topology, type Namespace } from '../support/netns.js';
import { sha256File, startServer, stopAll, tempDir, waitFor, type ServerProcess } from './harness.js';

const PREFIX = 'reeflive';
const unavailable = netnsUnavailable(PREFIX);
const SERVER_IP = '10.232.3.1';
const BRANCH_IP = '10.232.3.2';
const HEARTBEAT = { intervalMs: 10_000, timeoutMs: 15_000 };

describe('a branch on a 256 kbit/s line, with the default heartbeat', { skip: unavailable && `skipped: ${unavailable}` }, () => {
  let topology: Topology;
  let serverNs: Namespace;
  let branchNs: Namespace;
  let server: ServerProcess;
  let tentacleEnv: NodeJS.ProcessEnv;
  let agentLog = '';

  const tentacle = (args: string[]) => branchNs.ok(process.execPath, [TENTACLE_BIN, ...args], { env: tentacleEnv, timeoutMs: 60_000 });
  /** `reef ...` on the server host, as its administrator would run it. */
  const reef = (args: string[], timeoutMs = 60_000) =>
    serverNs.run(process.execPath, [REEF_BIN, ...args], { env: { ...process.env, ...server.env(server.adminKey!), REEF_LOG_LEVEL: 'warn' }, timeoutMs });
  const agentLines = () =>
    agentLog
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { time: number; msg: string; reason?: string });
  const online = async () => {
    const shown = await reef(['machines', 'show', 'branch-1', '--json']);
    return (JSON.parse(shown.stdout) as { online?: boolean }).online === true;
  };

  before(async () => {
    topology = Topology.create(PREFIX);
    serverNs = await topology.namespace('server');
    branchNs = await topology.namespace('branch');
    const link = await topology.link(serverNs, `${SERVER_IP}/30`, branchNs, `${BRANCH_IP}/30`);
    const tbf = { rate: '256kbit', burst: '8kb', latency: '100ms' };
    await serverNs.shape(link.a.ifname, tbf);
    await branchNs.shape(link.b.ifname, tbf);

    server = await startServer({
      dataDir: await tempDir('live-server'),
      httpsPort: 8443,
      commsPort: 10943,
      name: 'live-server',
      command: ['ip', 'netns', 'exec', serverNs.name, process.execPath, REEF_BIN],
      extraArgs: ['--host', '0.0.0.0'],
    });
    assert.ok(server.adminKey, 'the first run prints an admin key');
    tentacleEnv = { ...process.env, REEF_TENTACLE_ROOT: await tempDir('live-tentacles'), REEF_LOG_LEVEL: 'warn' };
    await tentacle(['create-instance', '--instance', 'Branch']);
    await tentacle(['new-certificate', '--instance', 'Branch']);
    await tentacle([
      'register-with', '--instance', 'Branch', '--server', `https://${SERVER_IP}:8443`, '--server-thumbprint', server.thumbprint, '--apiKey', server.adminKey!,
      '--comms-style', 'TentacleActive', '--server-comms-port', '10943', '--environment', 'Branch', '--role', 'till', '--name', 'branch-1',
    ]);
    const agent = branchNs.spawn(process.execPath, [TENTACLE_BIN, 'agent', '--instance', 'Branch'], { env: { ...tentacleEnv, REEF_LOG_LEVEL: 'info' } });
    agent.stderr!.setEncoding('utf8').on('data', (d: string) => (agentLog += d));
    await waitFor('the Tentacle to connect', async () => agentLines().some((line) => line.msg === 'comms: connected to server'), 60_000);
  });

  after(async () => {
    try {
      await stopAll();
    } finally {
      await topology?.destroy();
    }
  });

  test('a 1 MiB push completes with no reconnect and no heartbeat verdict', async () => {
    const source = join(await tempDir('live-payload'), 'payload.bin');
    await writeFile(source, randomBytes(1024 * 1024));
    const config = JSON.parse(await tentacle(['show-configuration', '--instance', 'Branch'])) as { app?: string; config?: { app: string } };
    const destination = join(config.app ?? config.config!.app, 'drop', 'payload.bin');
    const before = agentLines().length;
    const started = Date.now();
    const pushed = await reef(['tasks', 'push-file', source, destination, '--machine', 'branch-1', '--follow'], 150_000);
    assert.equal(pushed.code, 0, `${pushed.stdout}\n${pushed.stderr}`);
    assert.equal(await sha256File(destination), await sha256File(source));
    assert.ok(Date.now() - started > 2 * HEARTBEAT.timeoutMs, 'the push outlasted the heartbeat timeout (the line is that slow)');
    assert.doesNotMatch(pushed.stdout, /connection dropped|resuming/i, 'the push was never cut and resumed');
    const lost = agentLines().slice(before).filter((line) => line.msg === 'comms: disconnected from server');
    assert.deepEqual(lost, [], 'the Tentacle kept its link');
  });

  test('the line cut for longer than the heartbeat window is noticed within the timeout on both sides, and the Tentacle comes back', async () => {
    assert.equal(await online(), true);
    const before = agentLines().length;
    // A running script keeps bytes moving both ways until the cut.
    await reef(['tasks', 'run-script', '--machine', 'branch-1', '--script', 'for i in $(seq 1 30); do echo tick $i; sleep 1; done']);
    await sleep(3000);
    await branchNs.nft(`table inet ${PREFIX} {\n  chain input { type filter hook input priority filter; policy drop; }\n  chain output { type filter hook output priority filter; policy drop; }\n}`);
    const cutAt = Date.now();
    const margin = 5000;
    const noticed = await waitFor(
      'the Tentacle to notice the cut',
      async () => agentLines().slice(before).find((line) => line.msg === 'comms: disconnected from server'),
      HEARTBEAT.timeoutMs + margin + 10_000,
    );
    assert.match(noticed.reason ?? '', /Nothing arrived from the peer/);
    assert.ok(noticed.time - cutAt <= HEARTBEAT.timeoutMs + margin, `the Tentacle noticed after ${noticed.time - cutAt} ms`);
    const serverNoticedAt = await waitFor('the server to show the machine offline', async () => !(await online()) && Date.now(), HEARTBEAT.timeoutMs + margin + 10_000);
    assert.ok(serverNoticedAt - cutAt <= HEARTBEAT.timeoutMs + margin, `the server noticed after ${serverNoticedAt - cutAt} ms`);
    // Longer than the heartbeat window, then the line is back.
    await sleep(Math.max(0, cutAt + HEARTBEAT.intervalMs + HEARTBEAT.timeoutMs + 5000 - Date.now()));
    await branchNs.nft('');
    await waitFor('the Tentacle to reconnect', async () => await online(), 90_000);
  });
});

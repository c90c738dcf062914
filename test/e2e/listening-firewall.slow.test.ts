/**
 * A listening Tentacle on a real network behind a firewall, as a branch office has it:
 * the server and the branch host each in a network namespace, a veth cable between them
 * (10.231.7.0/29), and nftables on the branch host. The server dials the Tentacle; when
 * the firewall rejects (TCP reset) or drops, the health check fails within the pickup
 * timeout with a message that says which, names the address, and suggests polling; a
 * machine registered at an address where no host answers ARP is reported unreachable.
 *
 * Needs root, iproute2 and nftables (skipped with the reason otherwise). Every process
 * runs inside the namespaces; they are removed after the file, also when it fails.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TaskView } from '../../src/api/contract.js';
import { REEF_BIN, TENTACLE_BIN } from '../support/built.js';
import { netnsUnavailable, Topology, type Namespace } from '../support/netns.js';
import { startServer, stopAll, tempDir, waitFor, type ServerProcess } from './harness.js';

const PREFIX = 'reefdials';
const unavailable = netnsUnavailable(PREFIX);

/** Short, so the file stays short; long enough for a dropped SYN to meet the 10 s connect timeout first. */
const PICKUP_S = 12;
const SERVER_IP = '10.231.7.1';
const BRANCH_IP = '10.231.7.2';
/** In the subnet, but no host has it: ARP goes unanswered. */
const NOBODY_IP = '10.231.7.3';
const LISTEN_PORT = 10933;

describe('a listening Tentacle behind a firewall', { skip: unavailable && `skipped: ${unavailable}` }, () => {
  let topology: Topology;
  let serverNs: Namespace;
  let branchNs: Namespace;
  let server: ServerProcess;
  let tentacleEnv: NodeJS.ProcessEnv;
  let agentLog = '';

  /** `tentacle ...` on the branch host. */
  const tentacle = (args: string[]) => branchNs.ok(process.execPath, [TENTACLE_BIN, ...args], { env: tentacleEnv, timeoutMs: 60_000 });

  /** A health check from the server host's admin CLI, followed to its end; the final task and the printed log. */
  async function healthCheck(machines: string[]): Promise<{ task: TaskView; stdout: string }> {
    const result = await serverNs.run(process.execPath, [REEF_BIN, 'tasks', 'health-check', ...machines.flatMap((m) => ['--machine', m]), '--follow', '--json'], {
      env: { ...process.env, ...server.env(server.adminKey!), REEF_LOG_LEVEL: 'warn' },
      timeoutMs: (PICKUP_S + 45) * 1000,
    });
    const last = result.stdout.trim().split('\n').at(-1) ?? '';
    let final: { task?: TaskView } & TaskView;
    try {
      final = JSON.parse(last) as typeof final;
    } catch {
      throw new Error(`reef tasks health-check exited ${result.code} without a final task\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
    }
    return { task: final.task ?? final, stdout: result.stdout };
  }

  function machineRun(task: TaskView, name: string) {
    const run = task.machines.find((m) => m.machineName === name);
    assert.ok(run, `task ${task.id} has no part for ${name}`);
    const ms = Date.parse(run.finishedAt!) - Date.parse(run.startedAt!);
    return { ...run, ms };
  }

  /** The firewall of the branch host: everything allowed but `rule` on the Tentacle's port. */
  const firewall = (rule: string) =>
    branchNs.nft(`table inet ${PREFIX} {\n  chain input {\n    type filter hook input priority filter; policy accept;\n    tcp dport ${LISTEN_PORT} ${rule}\n  }\n}`);

  before(async () => {
    topology = Topology.create(PREFIX);
    serverNs = await topology.namespace('server');
    branchNs = await topology.namespace('branch');
    await topology.link(serverNs, `${SERVER_IP}/29`, branchNs, `${BRANCH_IP}/29`);

    // Inside its namespace the server may take fixed ports; it listens on the cable too, for registration.
    server = await startServer({
      dataDir: await tempDir('dials-server'),
      httpsPort: 8443,
      commsPort: 10943,
      pickupTimeoutSeconds: PICKUP_S,
      name: 'dials-server',
      command: ['ip', 'netns', 'exec', serverNs.name, process.execPath, REEF_BIN],
      extraArgs: ['--host', '0.0.0.0'],
    });
    assert.ok(server.adminKey, 'the first run prints an admin key');

    tentacleEnv = { ...process.env, REEF_TENTACLE_ROOT: await tempDir('dials-tentacles'), REEF_LOG_LEVEL: 'warn' };
    const register = (instance: string, name: string, publicHost: string) =>
      tentacle([
        'register-with', '--instance', instance, '--server', `https://${SERVER_IP}:8443`, '--server-thumbprint', server.thumbprint, '--apiKey', server.adminKey!,
        '--comms-style', 'TentaclePassive', '--publicHostName', publicHost, '--environment', 'Branch', '--role', 'till', '--name', name,
      ]);
    for (const instance of ['Branch', 'Ghost']) {
      await tentacle(['create-instance', '--instance', instance]);
      await tentacle(['new-certificate', '--instance', instance]);
    }
    await tentacle(['configure', '--instance', 'Branch', '--port', String(LISTEN_PORT), '--listenIpAddress', BRANCH_IP]);
    await register('Branch', 'branch-1', BRANCH_IP);
    // Registered at an address no host has: only the server's dialling ever meets it.
    await register('Ghost', 'ghost-1', NOBODY_IP);

    const agent = branchNs.spawn(process.execPath, [TENTACLE_BIN, 'agent', '--instance', 'Branch'], { env: { ...tentacleEnv, REEF_LOG_LEVEL: 'info' } });
    agent.stderr!.setEncoding('utf8').on('data', (d: string) => (agentLog += d));
    await waitFor('the listening Tentacle to listen', async () => agentLog.includes(`listening on ${BRANCH_IP}:${LISTEN_PORT}`), 30_000);
  });

  after(async () => {
    try {
      await stopAll();
    } finally {
      await topology?.destroy();
    }
  });

  test('without a firewall rule the server reaches it: the network itself works', async () => {
    const { task } = await healthCheck(['branch-1']);
    assert.equal(task.state, 'Success', JSON.stringify(task));
  });

  test('a firewall that rejects (TCP reset): the health check fails within the pickup timeout, saying the connection was refused', async () => {
    await firewall('reject with tcp reset');
    const { task, stdout } = await healthCheck(['branch-1']);
    assert.equal(task.state, 'Failed');
    const run = machineRun(task, 'branch-1');
    assert.ok(run.ms >= (PICKUP_S - 1) * 1000 && run.ms <= (PICKUP_S + 5) * 1000, `the machine run took ${run.ms} ms; the pickup timeout is ${PICKUP_S} s`);
    assert.match(run.error ?? '', new RegExp(`^Could not reach Tentacle "branch-1" \\([0-9A-F]{64}\\) at ${BRANCH_IP.replaceAll('.', '\\.')}:${LISTEN_PORT} within the pickup timeout \\(${PICKUP_S} s; \\d+ attempts over`));
    assert.match(run.error ?? '', /every connection was refused \(ECONNREFUSED, a TCP reset\): nothing listens on that port, or a firewall rejects the connection/);
    assert.match(run.error ?? '', /tentacle register-with --server .* --comms-style TentacleActive/);
    // A follower saw why it waited while it waited.
    const logged = stdout.trim().split('\n').map((line) => JSON.parse(line) as { type: string; stream?: string; text?: string; at?: string });
    const note = logged.find((line) => line.type === 'log' && line.stream === 'info' && /^Could not connect to Tentacle "branch-1" /.test(line.text ?? ''));
    assert.ok(note, stdout);
    assert.match(note.text!, /the connection was refused \(ECONNREFUSED\)\. Trying again until/);
    assert.ok(Date.parse(note.at!) - Date.parse(run.startedAt!) < 5000, 'noted as soon as the first attempt failed');
  });

  test('a firewall that drops, and an address where no host answers: both fail within the pickup timeout, saying nothing answered', async () => {
    await firewall('drop');
    const { task } = await healthCheck(['branch-1', 'ghost-1']);
    assert.equal(task.state, 'Failed');

    const dropped = machineRun(task, 'branch-1');
    assert.ok(dropped.ms >= (PICKUP_S - 1) * 1000 && dropped.ms <= (PICKUP_S + 5) * 1000, `the machine run took ${dropped.ms} ms; the pickup timeout is ${PICKUP_S} s`);
    assert.match(dropped.error ?? '', new RegExp(`^Could not reach Tentacle "branch-1" .* at ${BRANCH_IP.replaceAll('.', '\\.')}:${LISTEN_PORT} within the pickup timeout`));
    assert.match(dropped.error ?? '', /no connection attempt got any answer: a firewall drops the traffic, or the host is down/);
    assert.match(dropped.error ?? '', /--comms-style TentacleActive/);
    assert.doesNotMatch(dropped.error ?? '', /TLS/, 'TCP never connected: the message may not blame TLS');

    const nobody = machineRun(task, 'ghost-1');
    assert.ok(nobody.ms <= (PICKUP_S + 5) * 1000, `the machine run took ${nobody.ms} ms; the pickup timeout is ${PICKUP_S} s`);
    assert.match(nobody.error ?? '', new RegExp(`^Could not reach Tentacle "ghost-1" .* at ${NOBODY_IP.replaceAll('.', '\\.')}:${LISTEN_PORT} within the pickup timeout`));
    // Linux answers a SYN to a neighbour that ARP cannot find with EHOSTUNREACH after about 3 s.
    assert.match(nobody.error ?? '', /the network reported the host unreachable \(EHOSTUNREACH\): the host is down or there is no route to it/);
  });
});

/**
 * Liveness and small calls on a real slow network link: the server's and the Tentacle's
 * comms each in a network namespace (test/support/comms-peer.ts), joined by a veth cable
 * (10.232.1.0/30) shaped to 256 kbit/s each way with `tc tbf`. The heartbeat is shortened
 * (1 s interval, 3 s timeout) so the file stays short: a dead link is then noticed within
 * 3 s of the last byte, and the HTTP/2 window alone (1 MiB, 32 s at this rate) would have
 * starved it many times over.
 *
 * Needs root, iproute2, tc and nftables (skipped with the reason otherwise). The namespaces
 * (`reeflive-<pid>-*`) are removed after the file, also when it fails; those of an earlier
 * run that died are removed first.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { stopAll } from '../support/processes.js';
import { netnsUnavailable, Topology, type Namespace } from '../support/netns.js';
import { testIdentities } from './harness.js';

const PREFIX = 'reeflive';
const unavailable = netnsUnavailable(PREFIX);
const PEER = fileURLToPath(new URL('../support/comms-peer.ts', import.meta.url));
const SERVER_IP = '10.232.1.1';
const BRANCH_IP = '10.232.1.2';
const PORT = 10943;
const RATE_BITS = 256_000;
const LIMITS = { heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 3000 };

interface Line {
  at: number;
  event?: string;
  code?: string;
  message?: string;
  id?: number;
  ok?: boolean;
  ms?: number;
  result?: { size?: number };
}

/** A comms-peer process and the JSON lines it has written. */
class Peer {
  readonly lines: Line[] = [];
  private waiters: (() => void)[] = [];
  private nextId = 1;

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (text) => {
      this.lines.push(JSON.parse(text) as Line);
      for (const wake of this.waiters.splice(0)) wake();
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => process.stderr.write(`[${child.pid}] ${d}`));
  }

  async next(what: string, match: (line: Line) => boolean, from = 0, timeoutMs = 30_000): Promise<Line> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.slice(from).find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; lines: ${JSON.stringify(this.lines)}`);
      await Promise.race([new Promise<void>((wake) => this.waiters.push(wake)), sleep(200)]);
    }
  }

  events(name: string, from = 0): Line[] {
    return this.lines.slice(from).filter((line) => line.event === name);
  }

  /** Sends a command to the server peer; resolves with its answer line. */
  async command(op: 'upload' | 'echo', size?: number, timeoutMs = 120_000): Promise<Line> {
    const id = this.nextId++;
    this.child.stdin!.write(`${JSON.stringify({ id, op, size })}\n`);
    return this.next(`the answer to ${op} #${id}`, (line) => line.id === id, 0, timeoutMs);
  }
}

describe('comms on a real 256 kbit/s link', { skip: unavailable && `skipped: ${unavailable}` }, () => {
  let topology: Topology;
  let serverNs: Namespace;
  let branchNs: Namespace;
  let server: Peer;
  let tentacle: Peer;

  const start = async (ns: Namespace, role: 'server' | 'tentacle', settings: string) =>
    new Peer(ns.spawn(process.execPath, ['--import', 'tsx', PEER, role], { env: { ...process.env, REEF_PEER: settings }, stdio: ['pipe', 'pipe', 'pipe'] }));

  before(async () => {
    topology = Topology.create(PREFIX);
    serverNs = await topology.namespace('server');
    branchNs = await topology.namespace('branch');
    const link = await topology.link(serverNs, `${SERVER_IP}/30`, branchNs, `${BRANCH_IP}/30`);
    const tbf = { rate: `${RATE_BITS / 1000}kbit`, burst: '8kb', latency: '100ms' };
    await serverNs.shape(link.a.ifname, tbf);
    await branchNs.shape(link.b.ifname, tbf);

    const ids = await testIdentities();
    const settings = JSON.stringify({ host: SERVER_IP, port: PORT, limits: LIMITS, server: ids.server, tentacle: ids.tentacle });
    server = await start(serverNs, 'server', settings);
    await server.next('the server to listen', (line) => line.event === 'listening');
    tentacle = await start(branchNs, 'tentacle', settings);
    await server.next('the Tentacle to connect', (line) => line.event === 'connected');
    // The Tentacle reports its side a moment later; the tests count reconnects after it.
    await tentacle.next('the Tentacle to see its connection', (line) => line.event === 'connected');
  });

  after(async () => {
    try {
      await stopAll();
    } finally {
      await topology?.destroy();
    }
  });

  test('a transfer completes with no reconnect and no heartbeat verdict, and small calls pass it', async () => {
    const from = { server: server.lines.length, tentacle: tentacle.lines.length };
    const size = 320 * 1024; // 10 s at this rate: more than three heartbeat timeouts
    const transfer = server.command('upload', size);
    let finished: Line | undefined;
    void transfer.then((line) => (finished = line));
    const echoes: number[] = [];
    while (!finished) {
      const echo = await server.command('echo');
      assert.equal(echo.ok, true, `echo failed: ${echo.message}`);
      echoes.push(Math.round(echo.ms!));
      await sleep(500);
    }
    const done = await transfer;
    assert.equal(done.ok, true, `the transfer failed: ${done.code} ${done.message}`);
    assert.equal(done.result?.size, size);
    assert.deepEqual(server.events('disconnected', from.server), [], 'the server kept its connection');
    assert.deepEqual(tentacle.events('disconnected', from.tentacle), [], 'the Tentacle kept its connection');
    assert.deepEqual(tentacle.events('connected', from.tentacle), [], 'the Tentacle did not reconnect');
    // Bounds with room for a busy machine (a CPU-starved peer drains its link late); the
    // targets themselves (90% of the link, a small call within 2 s) are the small-calls
    // benchmark's. Framing costs a few per cent; the pacer may not cost a large share.
    const bitsPerSecond = (size * 8) / (done.ms! / 1000);
    assert.ok(bitsPerSecond >= RATE_BITS * 0.7, `throughput ${Math.round(bitsPerSecond / 1000)} kbit/s on a ${RATE_BITS / 1000} kbit/s link`);
    // Without the pacer an echo waits behind up to the 1 MiB HTTP/2 window: 32 s.
    assert.ok(Math.max(...echoes) < 5000, `echo round trips during the transfer: ${echoes.join(', ')} ms`);
  });

  test('a cut longer than the heartbeat window is noticed on both sides within the timeout, and the link comes back', async () => {
    const from = { server: server.lines.length, tentacle: tentacle.lines.length };
    const transfer = server.command('upload', 1024 * 1024);
    await sleep(2000);
    // Everything in and out of the branch host vanishes: no FIN, no RST, no ICMP.
    await branchNs.nft(`table inet ${PREFIX} {\n  chain input { type filter hook input priority filter; policy drop; }\n  chain output { type filter hook output priority filter; policy drop; }\n}`);
    const cutAt = Date.now();
    const window = LIMITS.heartbeatIntervalMs + LIMITS.heartbeatTimeoutMs;
    const serverSaw = await server.next('the server to notice the cut', (line) => line.event === 'disconnected', from.server, window * 3);
    const tentacleSaw = await tentacle.next('the Tentacle to notice the cut', (line) => line.event === 'disconnected', from.tentacle, window * 3);
    for (const [side, line] of [['server', serverSaw], ['Tentacle', tentacleSaw]] as const) {
      assert.equal(line.code, 'REEF_HEARTBEAT_TIMEOUT', `${side}: ${line.message}`);
      assert.ok(line.at - cutAt <= LIMITS.heartbeatTimeoutMs + 1500, `${side} noticed the cut after ${line.at - cutAt} ms`);
    }
    const failed = await transfer;
    assert.equal(failed.ok, false);
    // Keep the link cut for longer than the heartbeat window, then restore it.
    await sleep(Math.max(0, cutAt + window + 1000 - Date.now()));
    await branchNs.nft('');
    const back = await server.next('the Tentacle to reconnect', (line) => line.event === 'connected', from.server, 30_000);
    assert.ok(back.at > cutAt);
    const echo = await server.command('echo');
    assert.equal(echo.ok, true, `echo after the link came back: ${echo.message}`);
  });
});

/**
 * reconnect: a fleet of N polling Tentacles (the real agent, in several processes) is
 * connected to a real server process; the server is killed and started again on the
 * same ports and data. Measured: from the restarted server listening until it holds all
 * N connections again, and the handshakes per second that makes.
 *
 * The figure includes the Tentacles' backoff (docs/protocol.md, "Reconnects"): while the
 * server is down their retries fail and their waits grow (full jitter, 1 s, 2 s, 4 s...),
 * which spreads the fleet's return on purpose, so the server is not stampeded. A fresh
 * TLS handshake is needed: a restarted server has new session-ticket keys.
 */
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Benchmark } from '../support/benchmark.js';
import { startFleet } from '../support/fleet.js';
import { tentacleIdentities } from '../support/identities.js';
import { startServerWorker, type ServerWorker } from '../support/server-worker.js';
import { since } from '../support/stats.js';

const POLL_MS = 100;

const benchmark: Benchmark = {
  name: 'reconnect',
  order: 3,
  title: 'a fleet reconnecting after a server restart',
  timeoutMs: 5 * 60_000,
  async run(context) {
    const count = context.param('tentacles', 10_000);
    const processes = context.param('processes', 4);
    const identities = await tentacleIdentities(Math.min(context.param('certificates', 1000), count));

    const first = await startServerWorker(identities);
    context.defer(() => rm(first.dataDir, { recursive: true, force: true }));
    const fleet = await startFleet(context, processes);
    context.log(`connecting ${count} polling tentacles in ${processes} processes`);
    await fleet.grow({ identities, serverThumbprint: first.thumbprint, address: `tcp://127.0.0.1:${first.commsPort}` }, count);

    context.log('restarting the server');
    const killed = performance.now();
    await first.worker.stop('SIGKILL');
    await until(async () => (await fleet.connected()) === 0, 30_000, 'the tentacles to notice the server is gone');
    const noticedMs = since(killed);
    const restarted: ServerWorker = await startServerWorker(identities, first);
    const listening = performance.now();
    const downMs = listening - killed;

    const progress: { atMs: number; connected: number }[] = [];
    await until(
      async () => {
        const connected = await restarted.worker.call('links');
        progress.push({ atMs: Math.round(since(listening)), connected });
        return connected >= count;
      },
      120_000,
      `all ${count} tentacles to reconnect`,
    );
    const seconds = since(listening) / 1000;
    context.log(`all ${count} back ${seconds.toFixed(1)} s after the restarted server listened (it was down ${(downMs / 1000).toFixed(1)} s)`);

    return {
      figures: [
        { what: `time until all ${count.toLocaleString('en-US')} are connected again, from the restarted server listening`, value: seconds, unit: 's', target: { kind: 'at-most', limit: 30 } },
        { what: 'handshakes per second while they reconnect', value: count / seconds, unit: 'per s' },
      ],
      details: {
        tentacles: count,
        clientProcesses: processes,
        serverDownSeconds: downMs / 1000,
        disconnectNoticedSeconds: noticedMs / 1000,
        fromKillSeconds: since(killed) / 1000,
        progress: progress.filter((_, i) => i % 10 === 0 || i === progress.length - 1),
      },
    };
  },
};

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs / 1000} s`);
    await sleep(POLL_MS);
  }
}

export default benchmark;

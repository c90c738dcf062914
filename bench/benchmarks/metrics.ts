/**
 * metrics: what a Prometheus scrape of /metrics costs the server with a large fleet
 * connected. A real server process (bench/roles/reef-server.ts) renders its metrics
 * (what /metrics sends, before gzip) repeatedly with no Tentacle connected (the baseline),
 * then again with N idle polling Tentacles (the real agent, in several processes), each of
 * which has been through the handshake, the store's link and touch, and the server's ping.
 *
 * Nothing in the metrics grows with the fleet but one pass over the live connections
 * (tentacles per carrier, calls in flight), so the figure should stay near the baseline
 * and the text's size the same. N is capped by the server process's open-file limit.
 */
import { rm } from 'node:fs/promises';
import type { Benchmark } from '../support/benchmark.js';
import { startFleet } from '../support/fleet.js';
import { tentacleIdentities } from '../support/identities.js';
import { certificatesFor, openFileHardLimit } from '../support/limits.js';
import { startServerWorker } from '../support/server-worker.js';
import { distribution } from '../support/stats.js';

/** Descriptors the server process needs besides its tentacle connections. */
const SERVER_FD_RESERVE = 500;

const benchmark: Benchmark = {
  name: 'metrics',
  order: 10,
  title: 'a /metrics scrape with a large fleet connected',
  timeoutMs: 15 * 60_000,
  async run(context) {
    const wanted = context.param('tentacles', 20_000);
    const count = Math.min(wanted, openFileHardLimit() - SERVER_FD_RESERVE);
    const processes = context.param('processes', 4);
    const scrapes = context.param('scrapes', 50);
    const identities = await tentacleIdentities(Math.min(context.param('certificates', certificatesFor(count)), count));

    const server = await startServerWorker(identities);
    context.defer(() => rm(server.dataDir, { recursive: true, force: true }));
    await server.worker.call('scrape', { count: 5 }); // warm-up: the first render compiles its code
    const idle = await server.worker.call('scrape', { count: scrapes });
    context.log(`no tentacle: p50 ${distribution(idle.ms).p50.toFixed(2)} ms, ${idle.bytes} bytes (${idle.gzipBytes} gzipped)`);

    const fleet = await startFleet(context, processes);
    context.log(`connecting ${count} polling tentacles in ${processes} processes${count < wanted ? ` (${wanted} asked; the open-file limit allows ${count})` : ''}`);
    // Generous: on a shared machine thousands of handshakes queue behind other work.
    const connectTimeoutMs = context.param('connect-timeout-seconds', 300) * 1000;
    const window = context.param('window', 32);
    await fleet.grow({ identities, serverThumbprint: server.thumbprint, address: `tcp://127.0.0.1:${server.commsPort}`, window, connectTimeoutMs }, count);
    const connected = await server.worker.call('links');
    const loaded = await server.worker.call('scrape', { count: scrapes });
    const at = distribution(loaded.ms);
    context.log(`${connected} tentacles: p50 ${at.p50.toFixed(2)} ms, p99 ${at.p99.toFixed(2)} ms, ${loaded.bytes} bytes (${loaded.gzipBytes} gzipped)`);

    const fleetSize = connected.toLocaleString('en-US');
    return {
      figures: [
        {
          what: `p50, rendering /metrics with ${fleetSize} tentacles connected`,
          value: at.p50,
          unit: 'ms',
          baseline: { what: 'with none connected', value: distribution(idle.ms).p50 },
          target: { kind: 'at-most', limit: 50 },
        },
        { what: `p99, rendering /metrics with ${fleetSize} tentacles connected`, value: at.p99, unit: 'ms' },
        { what: `size of /metrics with ${fleetSize} tentacles connected (gzipped: ${(loaded.gzipBytes / 1024).toFixed(1)} KiB)`, value: loaded.bytes / 1024, unit: 'KiB', baseline: { what: 'with none connected', value: idle.bytes / 1024 } },
      ],
      details: { tentacles: connected, asked: wanted, scrapes, idle: { ...distribution(idle.ms), bytes: idle.bytes, gzipBytes: idle.gzipBytes }, loaded: { ...at, bytes: loaded.bytes, gzipBytes: loaded.gzipBytes } },
    };
  },
};

export default benchmark;

/**
 * fleet: how large a fleet one server process holds. The server's resident memory is
 * read (after GC) before and after N idle polling Tentacles connect; the growth divided
 * by N is what each Tentacle costs. Baseline: a bare mutual-TLS listener holding N idle
 * connections, measured the same way in the same run.
 *
 * The Tentacles are the real agent (its comms, RPC host and services), spread over
 * several client processes; the server is the real `startReefServer` (store, task
 * engine, API, front door), so per-connection costs outside comms count too: the trust
 * lookup, the store touch and the ping each new connection gets. Every tentacle
 * certificate is a registered machine; with fewer certificates than tentacles, several
 * connections share one (a machine with several links), which costs the server the
 * same per connection.
 *
 * Then the fleet grows towards as many as this machine allows: the server process's
 * open-file limit (the sandbox's hard limit), or as many as the connect rate seen so far
 * brings in `--grow-seconds`, whichever is fewer. Issue 18 asks for the open-file limit,
 * at the same memory per Tentacle: both are figures with targets.
 */
import { rm } from 'node:fs/promises';
import type { Benchmark } from '../support/benchmark.js';
import { share, startFleet } from '../support/fleet.js';
import { tentacleIdentities } from '../support/identities.js';
import { certificatesFor, openFileHardLimit } from '../support/limits.js';
import { growth } from '../support/memory.js';
import { startServerWorker } from '../support/server-worker.js';
import { since } from '../support/stats.js';
import { startWorker, startWorkers } from '../support/workers.js';
import type { operations as tlsOperations } from '../roles/tls.js';

/** Descriptors the server process needs besides its tentacle connections. */
const SERVER_FD_RESERVE = 500;

const benchmark: Benchmark = {
  name: 'fleet',
  order: 2,
  title: 'server memory per idle polling tentacle',
  timeoutMs: 15 * 60_000,
  async run(context) {
    const count = context.param('tentacles', 10_000);
    const processes = context.param('processes', 4);
    const certificates = context.param('certificates', certificatesFor(count));
    // Enough for the rest up to a 20,000 descriptor limit at this machine's connect rate.
    const growSeconds = context.param('grow-seconds', 300);
    /** Handshakes in flight per client process. */
    const window = context.param('window', 32);
    const identities = await tentacleIdentities(Math.min(certificates, count));

    context.log(`baseline: ${count} bare mutual-TLS connections`);
    const listener = await startWorker<typeof tlsOperations>('tls', 'tls listener');
    const port = await listener.call('listen', { identity: identities[0]!, mode: 'hold' });
    const tlsBefore = await listener.call('memory');
    const clients = await startWorkers<typeof tlsOperations>('tls', processes);
    await Promise.all(clients.map((client, k) => client.call('hold', { identity: identities[k % identities.length]!, port, count: share(count, processes, k), window })));
    const baseline = growth(tlsBefore, await listener.call('memory'), await listener.call('open'));
    await Promise.all([listener, ...clients].map((worker) => worker.stop()));
    context.log(`baseline: ${baseline.rssKiB.toFixed(1)} KiB per connection`);

    const server = await startServerWorker(identities);
    context.defer(() => rm(server.dataDir, { recursive: true, force: true }));
    const reefBefore = await server.worker.call('memory');
    const fleet = await startFleet(context, processes);
    const group = { identities, serverThumbprint: server.thumbprint, address: `tcp://127.0.0.1:${server.commsPort}`, window };
    context.log(`reef: ${count} polling tentacles in ${processes} processes`);
    const connectStarted = performance.now();
    await fleet.grow(group, count);
    const connectSeconds = since(connectStarted) / 1000;
    const reef = growth(reefBefore, await server.worker.call('memory'), await server.worker.call('links'));
    context.log(`reef: ${reef.rssKiB.toFixed(1)} KiB per tentacle (${reef.connections} connected in ${connectSeconds.toFixed(1)} s)`);

    // As many as the machine allows: up to the server's descriptors, as many more as the
    // connect rate seen so far brings in the growing time.
    const ceiling = Math.max(count, openFileHardLimit() - SERVER_FD_RESERVE);
    const more = Math.min(ceiling - reef.connections, Math.round((reef.connections / connectSeconds) * growSeconds));
    let most = reef;
    if (more > 0) {
      context.log(`growing by ${more} towards ${ceiling === Infinity ? 'the time budget' : ceiling}`);
      await fleet.grow(group, more);
      most = growth(reefBefore, await server.worker.call('memory'), await server.worker.call('links'));
    }

    return {
      figures: [
        {
          what: `server RSS per idle polling tentacle at ${count.toLocaleString('en-US')}`,
          value: reef.rssKiB,
          unit: 'KiB',
          baseline: { what: `per bare mutual-TLS socket at ${count.toLocaleString('en-US')}`, value: baseline.rssKiB },
          target: { kind: 'at-most', limit: 80 }, // issue 18: at most 80 KiB (or 2x the bare socket)
        },
        {
          what: `most tentacles held (ceiling: ${ceiling === Infinity ? '' : `${ceiling.toLocaleString('en-US')} by the open-file limit, or `}about ${growSeconds} s more of connecting)`,
          value: most.connections,
          unit: 'tentacles',
          // Issue 18: up to the open-file limit.
          ...(ceiling === Infinity ? {} : { target: { kind: 'at-least' as const, limit: ceiling } }),
        },
        {
          what: `server RSS per tentacle at ${most.connections.toLocaleString('en-US')}`,
          value: most.rssKiB,
          unit: 'KiB',
          baseline: { what: `per tentacle at ${count.toLocaleString('en-US')}`, value: reef.rssKiB },
          // Issue 18: the most held at the same memory per Tentacle (within 10%).
          target: { kind: 'ratio-at-most', limit: 1.1 },
        },
      ],
      details: { tentacles: count, certificates: identities.length, clientProcesses: processes, connectSeconds, baseline, reef, most, openFileHardLimit: openFileHardLimit() },
    };
  },
};

export default benchmark;

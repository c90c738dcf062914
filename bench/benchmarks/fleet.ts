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
 * Then the fleet grows in steps towards as many as this machine allows: the server
 * process's open-file limit (the sandbox's hard limit), or the time budget, whichever
 * comes first.
 */
import { rm } from 'node:fs/promises';
import type { Benchmark } from '../support/benchmark.js';
import { share, startFleet } from '../support/fleet.js';
import { tentacleIdentities } from '../support/identities.js';
import { openFileHardLimit } from '../support/limits.js';
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
  timeoutMs: 6 * 60_000,
  async run(context) {
    const count = context.param('tentacles', 10_000);
    const processes = context.param('processes', 4);
    const certificates = context.param('certificates', 1000);
    const growSeconds = context.param('grow-seconds', 60);
    const identities = await tentacleIdentities(Math.min(certificates, count));
    const perConnectionKiB = (before: number, after: number, n: number) => (after - before) / 1024 / n;

    context.log(`baseline: ${count} bare mutual-TLS connections`);
    const listener = await startWorker<typeof tlsOperations>('tls', 'tls listener');
    const port = await listener.call('listen', { identity: identities[0]!, mode: 'hold' });
    const tlsBefore = await listener.call('rss');
    const clients = await startWorkers<typeof tlsOperations>('tls', processes);
    await Promise.all(clients.map((client, k) => client.call('hold', { identity: identities[k % identities.length]!, port, count: share(count, processes, k), window: 32 })));
    const tlsOpen = await listener.call('open');
    const tlsAfter = await listener.call('rss');
    await Promise.all([listener, ...clients].map((worker) => worker.stop()));
    const baselineKiB = perConnectionKiB(tlsBefore, tlsAfter, tlsOpen);
    context.log(`baseline: ${baselineKiB.toFixed(1)} KiB per connection (${tlsOpen} open)`);

    const server = await startServerWorker(identities);
    context.defer(() => rm(server.dataDir, { recursive: true, force: true }));
    const reefBefore = await server.worker.call('rss');
    const fleet = await startFleet(context, processes);
    const group = { identities, serverThumbprint: server.thumbprint, address: `tcp://127.0.0.1:${server.commsPort}` };
    context.log(`reef: ${count} polling tentacles in ${processes} processes`);
    const connectStarted = performance.now();
    await fleet.grow(group, count);
    const connectSeconds = since(connectStarted) / 1000;
    const links = await server.worker.call('links');
    const reefAfter = await server.worker.call('rss');
    const reefKiB = perConnectionKiB(reefBefore, reefAfter, links);
    context.log(`reef: ${reefKiB.toFixed(1)} KiB per tentacle (${links} connected in ${connectSeconds.toFixed(1)} s)`);

    // As many as the machine allows: the server's descriptors, within the time budget.
    const ceiling = Math.max(count, openFileHardLimit() - SERVER_FD_RESERVE);
    const step = Math.max(1000, Math.round(count / 5));
    const growUntil = performance.now() + growSeconds * 1000;
    let held = links;
    while (held + step <= ceiling && performance.now() < growUntil) {
      await fleet.grow(group, step);
      held = await server.worker.call('links');
      context.log(`grown to ${held}`);
    }
    const heldRss = held === links ? reefAfter : await server.worker.call('rss');
    const heldKiB = perConnectionKiB(reefBefore, heldRss, held);

    return {
      figures: [
        {
          what: `server RSS per idle polling tentacle at ${count.toLocaleString('en-US')}`,
          value: reefKiB,
          unit: 'KiB',
          baseline: { what: `per bare mutual-TLS socket at ${count.toLocaleString('en-US')}`, value: baselineKiB },
          target: { kind: 'at-most', limit: 100 },
        },
        { what: `most tentacles held (ceiling: ${ceiling === Infinity ? '' : `${ceiling.toLocaleString('en-US')} by the open-file limit, or `}${growSeconds} s of growing)`, value: held, unit: 'tentacles' },
        { what: `server RSS per tentacle at ${held.toLocaleString('en-US')}`, value: heldKiB, unit: 'KiB' },
      ],
      details: {
        tentacles: count,
        certificates: identities.length,
        clientProcesses: processes,
        baseline: { connections: tlsOpen, rssBeforeMiB: mib(tlsBefore), rssAfterMiB: mib(tlsAfter), perConnectionKiB: baselineKiB },
        reef: { connections: links, rssBeforeMiB: mib(reefBefore), rssAfterMiB: mib(reefAfter), perTentacleKiB: reefKiB, connectSeconds },
        most: { tentacles: held, rssMiB: mib(heldRss), perTentacleKiB: heldKiB, openFileHardLimit: openFileHardLimit() },
      },
    };
  },
};

function mib(bytes: number): number {
  return Math.round((bytes / 2 ** 20) * 10) / 10;
}

export default benchmark;

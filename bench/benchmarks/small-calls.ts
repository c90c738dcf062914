/**
 * small-calls: a one-line script run while a push is under way to the same Tentacle, on a
 * slow link, and what the push keeps of the link's rate. The Reef server and the Tentacle
 * (the real agent) each run in a network namespace (`reeflive-<pid>-*`, made with
 * test/support/netns.ts), joined by a veth cable shaped to 512 kbit/s each way with
 * `tc tbf` (burst 8 KiB, 100 ms of queue). Needs root, iproute2 and tc.
 *
 * - Script: a run-script task `echo`, from the API call to the task's end, every few
 *   seconds while a push-file of 1.5 MiB (about 25 s at this rate) runs to the same
 *   machine; the slowest counts. Baseline: the same script on the idle link.
 * - Push: that push-file's throughput (API call to task end). Baseline: the same link's
 *   rate as a bare mutual-TLS socket copy between the two namespaces measures it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Benchmark, Figure } from '../support/benchmark.js';
import { tentacleRoot } from '../support/fleet.js';
import { tentacleIdentities } from '../support/identities.js';
import { distribution, MiB } from '../support/stats.js';
import { startWorker } from '../support/workers.js';
import type { operations as linkOperations } from '../roles/shaped-link.js';
import type { operations as tentacleOperations } from '../roles/tentacles.js';
import type { operations as tlsOperations } from '../roles/tls.js';
import { netnsUnavailable, Topology } from '../../test/support/netns.js';

const PREFIX = 'reeflive';
const SERVER_IP = '10.232.2.1';
const BRANCH_IP = '10.232.2.2';
const MACHINE = 'branch-1';

const benchmark: Benchmark = {
  name: 'small-calls',
  order: 11,
  title: 'a one-line script during a push on a 512 kbit/s link, and the push’s share of the link',
  timeoutMs: 5 * 60_000,
  async run(context) {
    const unavailable = netnsUnavailable(PREFIX);
    if (unavailable) throw new Error(`this benchmark builds a shaped link with network namespaces: ${unavailable}`);
    const rateKbit = context.param('rate-kbit', 512);
    const pushBytes = context.param('push-kib', 1536) * 1024;
    const baselineBytes = context.param('baseline-kib', 512) * 1024;
    const idleScripts = context.param('idle-scripts', 3);

    const topology = Topology.create(PREFIX);
    context.defer(() => topology.destroy());
    const serverNs = await topology.namespace('server');
    const branchNs = await topology.namespace('branch');
    const link = await topology.link(serverNs, `${SERVER_IP}/30`, branchNs, `${BRANCH_IP}/30`);
    const tbf = { rate: `${rateKbit}kbit`, burst: '8kb', latency: '100ms' };
    await serverNs.shape(link.a.ifname, tbf);
    await branchNs.shape(link.b.ifname, tbf);

    const [tentacle, sinkIdentity, clientIdentity] = await tentacleIdentities(3);
    const dataDir = await mkdtemp(join(tmpdir(), 'reef-bench-small-calls-'));
    context.defer(() => rm(dataDir, { recursive: true, force: true }));
    const server = await startWorker<typeof linkOperations>('shaped-link', 'reef server (shaped link)', { netns: serverNs.name });
    const started = await server.call('start', { host: SERVER_IP, dataDir, machine: { name: MACHINE, thumbprint: tentacle!.thumbprint } });

    const root = await tentacleRoot(context);
    const tentacles = await startWorker<typeof tentacleOperations>('tentacles', 'tentacle (shaped link)', { netns: branchNs.name });
    const [home] = (
      await tentacles.call('start', {
        identities: [tentacle!],
        count: 1,
        serverThumbprint: started.thumbprint,
        address: `tcp://${SERVER_IP}:${started.commsPort}`,
        root,
        window: 1,
        connectTimeoutMs: 60_000,
      })
    ).homes;
    const sink = await startWorker<typeof tlsOperations>('tls', 'tls sink (shaped link)', { netns: branchNs.name });
    const sinkPort = await sink.call('listen', { identity: sinkIdentity!, mode: 'sink', host: BRANCH_IP });

    context.log(`link: ${rateKbit} kbit/s each way; bare TLS copy of ${baselineBytes / 1024} KiB`);
    const copyMs = await server.call('copy', { identity: clientIdentity!, host: BRANCH_IP, port: sinkPort, size: baselineBytes });
    const linkKbit = (baselineBytes * 8) / copyMs;
    context.log(`bare TLS: ${linkKbit.toFixed(0)} kbit/s`);

    const idle: number[] = [];
    for (let i = 0; i < idleScripts; i++) idle.push(await server.call('script', { machine: MACHINE }));
    context.log(`script on the idle link: ${idle.map(Math.round).join(', ')} ms`);

    await server.call('upload', { size: pushBytes });
    context.log(`pushing ${pushBytes / 1024} KiB; scripts meanwhile`);
    let pushMs: number | undefined;
    let pushError: unknown;
    const push = server.call('push', { machine: MACHINE, destination: join(home!, 'Applications', 'pushed.bin') }).then(
      (ms) => (pushMs = ms),
      (err: unknown) => (pushError = err),
    );
    const during: number[] = [];
    await sleep(2000); // the push is under way, its bytes queued ahead
    while (pushMs === undefined && pushError === undefined) {
      const ms = await server.call('script', { machine: MACHINE });
      if (pushMs === undefined && pushError === undefined) during.push(ms);
      context.log(`script during the push: ${Math.round(ms)} ms`);
      await sleep(1500);
    }
    await push;
    if (pushError) throw pushError;
    const pushKbit = (pushBytes * 8) / pushMs!;
    context.log(`push: ${pushKbit.toFixed(0)} kbit/s`);
    await server.call('stop');

    const slowestIdle = Math.max(...idle);
    const figures: Figure[] = [
      {
        what: `one-line script during a push, ${rateKbit} kbit/s link, slowest of ${during.length}`,
        value: Math.max(...during),
        unit: 'ms',
        baseline: { what: 'the same script on the idle link, slowest', value: slowestIdle },
        target: { kind: 'at-most', limit: 2000 },
      },
      {
        what: `push-file of ${pushBytes / MiB} MiB on the ${rateKbit} kbit/s link, while the scripts ran`,
        value: pushKbit,
        unit: 'kbit/s',
        baseline: { what: 'bare mutual-TLS socket copy over the same link', value: linkKbit },
        target: { kind: 'ratio-at-least', limit: 0.9 },
      },
    ];
    return {
      figures,
      details: { rateKbit, tbf, pushBytes, baselineBytes, linkKbit, pushKbit, idleScriptMs: idle, duringPushScriptMs: distribution(during), duringPushSamplesMs: during },
    };
  },
};

export default benchmark;

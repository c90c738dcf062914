/**
 * transfer: a large file (1 GiB by default) pushed to one Tentacle over each carrier,
 * from the push-file API call until the task has ended: the server reads the uploaded
 * file, streams it over the carrier in an HTTP/2 call, and the Tentacle (the real agent,
 * in another process) writes it, SHA-256 checks it and moves it into place (on tmpfs:
 * this VM's disk is not what is measured).
 *
 * Carriers: the comms port (10943), the HTTPS port's front door by SNI (443), a WebSocket
 * on the HTTPS port, and an HTTP CONNECT proxy (tinyproxy) to the comms port.
 * Baseline: the same bytes copied over one bare mutual-TLS socket between the same two
 * kinds of process, measured before and after the carriers; the faster of the two counts.
 */
import { join } from 'node:path';
import type { Benchmark, Figure } from '../support/benchmark.js';
import { startFleet, type FleetGroup } from '../support/fleet.js';
import { tentacleIdentities } from '../support/identities.js';
import { payload, timePush, uploadPayload } from '../support/payload.js';
import { connectRawTls, copyTo } from '../support/raw-tls.js';
import { POLLING_HOSTNAME, registerMachines, startBenchServer } from '../support/reef-server.js';
import { mibPerSecond, MiB, since } from '../support/stats.js';
import { startWorker } from '../support/workers.js';
import type { operations as tlsOperations } from '../roles/tls.js';
import { startTinyproxy } from '../../test/support/tinyproxy.js';

interface Carrier {
  name: string;
  /** Fraction of the baseline's throughput the issue asks for. */
  target: number;
  group(ports: { comms: number; https: number; proxy: number }): Omit<FleetGroup, 'identities' | 'serverThumbprint'>;
}

export const CARRIERS: readonly Carrier[] = [
  { name: 'comms port 10943', target: 0.7, group: ({ comms }) => ({ address: `tcp://127.0.0.1:${comms}` }) },
  {
    name: '443 front door (SNI)',
    target: 0.6,
    group: ({ https }) => ({ address: `https://${POLLING_HOSTNAME}:${https}`, resolve: { [`${POLLING_HOSTNAME}:${https}`]: '127.0.0.1' } }),
  },
  { name: 'WebSocket', target: 0.5, group: ({ https }) => ({ address: `wss://127.0.0.1:${https}/reef/comms` }) },
  { name: 'HTTP proxy (tinyproxy CONNECT)', target: 0.5, group: ({ comms, proxy }) => ({ address: `tcp://127.0.0.1:${comms}`, proxyPort: proxy }) },
];

const benchmark: Benchmark = {
  name: 'transfer',
  order: 4,
  title: 'a large file pushed to one tentacle over each carrier',
  timeoutMs: 5 * 60_000,
  async run(context) {
    const size = context.param('size-mib', 1024) * MiB;
    const identities = await tentacleIdentities(CARRIERS.length + 2);
    const [sinkIdentity, clientIdentity] = identities.slice(CARRIERS.length);

    const bench = await startBenchServer();
    context.defer(() => bench.removeData());
    context.defer(() => bench.close());
    const proxy = await startTinyproxy();
    context.defer(() => proxy.stop());
    const machines = CARRIERS.map((carrier, i) => ({ name: `transfer-${i + 1}`, thumbprint: identities[i]!.thumbprint }));
    await registerMachines(bench.server, machines);
    const fleet = await startFleet(context, 1);
    const ports = { comms: bench.server.commsPort, https: bench.server.httpsPort, proxy: proxy.port };
    const homes: string[] = [];
    for (const [i, carrier] of CARRIERS.entries()) {
      const [home] = await fleet.grow({ ...carrier.group(ports), identities: [identities[i]!], serverThumbprint: bench.thumbprint }, 1);
      homes.push(home!);
    }

    context.log(`uploading ${size / MiB} MiB to the server`);
    const file = await uploadPayload(bench.api, size);

    const sink = await startWorker<typeof tlsOperations>('tls', 'tls sink');
    const socket = await connectRawTls(clientIdentity!, await sink.call('listen', { identity: sinkIdentity!, mode: 'sink' }));
    context.defer(() => socket.destroy());
    const copy = async () => {
      const started = performance.now();
      await copyTo(socket, payload(size), size);
      return mibPerSecond(size, since(started));
    };

    const baselineRuns = [await copy()];
    context.log(`baseline: ${baselineRuns[0]!.toFixed(0)} MiB/s`);
    const pushed: number[] = [];
    for (const [i, carrier] of CARRIERS.entries()) {
      pushed.push(mibPerSecond(size, await timePush(bench.api, machines[i]!.name, file, join(homes[i]!, 'Applications', 'pushed.bin'))));
      context.log(`${carrier.name}: ${pushed[i]!.toFixed(0)} MiB/s`);
    }
    baselineRuns.push(await copy());
    const baseline = Math.max(...baselineRuns);

    const figures: Figure[] = CARRIERS.map((carrier, i) => ({
      what: `push-file of ${size / MiB} MiB over the ${carrier.name}`,
      value: pushed[i]!,
      unit: 'MiB/s',
      baseline: { what: 'raw mutual-TLS socket copy', value: baseline },
      target: { kind: 'ratio-at-least', limit: carrier.target },
    }));
    return { figures, details: { sizeMiB: size / MiB, baselineRunsMiBps: baselineRuns, pushedMiBps: Object.fromEntries(CARRIERS.map((c, i) => [c.name, pushed[i]])) } };
  },
};

export default benchmark;

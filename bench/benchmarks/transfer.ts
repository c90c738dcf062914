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
 * kinds of process, measured before each round and after the last; the fastest counts.
 * Each carrier's figure is the median of `--rounds` pushes (3), the rounds interleaved so
 * that a burst of other work on the machine does not land on one carrier only.
 * `--carrier=N` (1-4) pushes over that carrier only (to profile one).
 *
 * A second reference, in the same rounds: the raw copy to a receiver that also SHA-256s the
 * bytes and writes them to a file (tmpfs, fsynced), as any receiver of a verified file must.
 * On a machine where both ends share the cores, it is the most a push can reach.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Benchmark, Figure } from '../support/benchmark.js';
import { startFleet, type FleetGroup } from '../support/fleet.js';
import { tentacleIdentities } from '../support/identities.js';
import { payload, timePush, uploadPayload } from '../support/payload.js';
import { connectRawTls, copyTo } from '../support/raw-tls.js';
import { POLLING_HOSTNAME, registerMachines, startBenchServer } from '../support/reef-server.js';
import { mibPerSecond, MiB, percentile, since } from '../support/stats.js';
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
  timeoutMs: 12 * 60_000,
  async run(context) {
    const size = context.param('size-mib', 1024) * MiB;
    const rounds = context.param('rounds', 3);
    const only = context.param('carrier', 0);
    const carriers = only > 0 ? [CARRIERS[only - 1]!] : CARRIERS;
    const identities = await tentacleIdentities(CARRIERS.length + 2);
    const [sinkIdentity, clientIdentity] = identities.slice(CARRIERS.length);
    const storeCopies = context.param('store-copy', 1) > 0;

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
    const storer = await startWorker<typeof tlsOperations>('tls', 'tls store');
    const storeSocket = await connectRawTls(clientIdentity!, await storer.call('listen', { identity: sinkIdentity!, mode: 'store' }));
    context.defer(() => storeSocket.destroy());
    const copyCpu: { sender: number; receiver: number }[] = [];
    const storeCpu: { sender: number; receiver: number }[] = [];
    const copyOver = async (to: typeof socket, receiverPid: number, spent: typeof copyCpu) => {
      const before = { sender: ownCpuSeconds(), receiver: processCpuSeconds(receiverPid) };
      const started = performance.now();
      await copyTo(to, payload(size), size);
      const rate = mibPerSecond(size, since(started));
      spent.push({ sender: ownCpuSeconds() - before.sender, receiver: processCpuSeconds(receiverPid) - before.receiver });
      return rate;
    };
    const copy = () => copyOver(socket, sink.pid, copyCpu);
    const storeRuns: number[] = [];

    // CPU seconds (all threads) per push of the server (this process) and the Tentacle's
    // process: on a shared machine throughput moves with the neighbours, the CPU cost much
    // less. The Tentacle's main thread apart: it decrypts TLS, so it is what bounds a push
    // where cores are free.
    const tentaclePid = fleet.workers[0]!.pid;
    const cpu = () => ({ server: ownCpuSeconds(), tentacle: processCpuSeconds(tentaclePid), tentacleMainThread: processCpuSeconds(tentaclePid, tentaclePid) });
    const cpuSpent = new Map<Carrier, { server: number; tentacle: number; tentacleMainThread: number }[]>(carriers.map((carrier) => [carrier, []]));
    const baselineRuns: number[] = [];
    const pushed = new Map<Carrier, number[]>(carriers.map((carrier) => [carrier, []]));
    for (let round = 1; round <= rounds; round++) {
      baselineRuns.push(await copy());
      const copied = copyCpu.at(-1)!;
      context.log(`round ${round}: baseline ${baselineRuns.at(-1)!.toFixed(0)} MiB/s, CPU ${copied.sender.toFixed(2)} s sender, ${copied.receiver.toFixed(2)} s receiver`);
      if (storeCopies) {
        storeRuns.push(await copyOver(storeSocket, storer.pid, storeCpu));
        const stored = storeCpu.at(-1)!;
        context.log(`round ${round}: raw copy hashed and written ${storeRuns.at(-1)!.toFixed(0)} MiB/s, CPU ${stored.sender.toFixed(2)} s sender, ${stored.receiver.toFixed(2)} s receiver`);
      }
      for (const carrier of carriers) {
        const i = CARRIERS.indexOf(carrier);
        const before = cpu();
        const rate = mibPerSecond(size, await timePush(bench.api, machines[i]!.name, file, join(homes[i]!, 'Applications', 'pushed.bin')));
        const after = cpu();
        const spent = { server: after.server - before.server, tentacle: after.tentacle - before.tentacle, tentacleMainThread: after.tentacleMainThread - before.tentacleMainThread };
        pushed.get(carrier)!.push(rate);
        cpuSpent.get(carrier)!.push(spent);
        context.log(`round ${round}: ${carrier.name}: ${rate.toFixed(0)} MiB/s, CPU ${spent.server.toFixed(2)} s server, ${spent.tentacle.toFixed(2)} s Tentacle (${spent.tentacleMainThread.toFixed(2)} s its main thread)`);
      }
    }
    baselineRuns.push(await copy());
    const baseline = Math.max(...baselineRuns);
    const median = (values: number[]) => percentile([...values].sort((a, b) => a - b), 50);

    const figures: Figure[] = carriers.map((carrier) => ({
      what: `push-file of ${size / MiB} MiB over the ${carrier.name}${rounds > 1 ? ` (median of ${rounds})` : ''}`,
      value: median(pushed.get(carrier)!),
      unit: 'MiB/s',
      baseline: { what: 'raw mutual-TLS socket copy', value: baseline },
      target: { kind: 'ratio-at-least', limit: carrier.target },
    }));
    if (storeRuns.length > 0) {
      figures.push({
        what: `raw mutual-TLS copy of ${size / MiB} MiB, SHA-256 hashed and written to a file by the receiver (median of ${storeRuns.length}): the most a push can reach here`,
        value: median(storeRuns),
        unit: 'MiB/s',
        baseline: { what: 'raw mutual-TLS socket copy', value: baseline },
      });
    }
    return { figures, details: { sizeMiB: size / MiB, rounds, baselineRunsMiBps: baselineRuns, baselineCpuSeconds: copyCpu, storedCopyRunsMiBps: storeRuns, storedCopyCpuSeconds: storeCpu, pushedMiBps: Object.fromEntries(carriers.map((c) => [c.name, pushed.get(c)])), cpuSecondsPerPush: Object.fromEntries(carriers.map((c) => [c.name, cpuSpent.get(c)])) } };
  },
};

/** User + system CPU seconds of a process so far, all its threads or only `thread` (Linux /proc; NaN elsewhere). */
function processCpuSeconds(pid: number, thread?: number): number {
  try {
    const fields = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** Linux's USER_HZ, which /proc/<pid>/stat counts in. */
const CLOCK_TICKS = 100;

export default benchmark;

/**
 * dispatch: how fast work reaches an idle polling Tentacle. The Tentacle (the real agent,
 * in its own process) holds its outbound connection open, so the server sends at once
 * instead of waiting for a poll. Measured two ways, each against a raw mutual-TLS
 * ping-pong (one byte there and back between two processes on an open connection):
 *
 * - comms call: `CommsServer.call(tentacle, "health.ping")` in the server process, to
 *   the result: HTTP/2 stream, JSON frames, the Tentacle's RPC host and back.
 * - REST task: what a user of the API waits for. POST /api/tasks with a health-check of
 *   that machine (the lightest task: two calls to the Tentacle), then its event stream
 *   until the server says the task ended, as `reef tasks health-check --follow` does.
 *   Includes two HTTPS connections and the durable bookkeeping of a task (about a dozen
 *   store writes).
 *
 * Samples alternate between the three in rounds, so load from elsewhere hits them alike.
 */
import type { Benchmark, Figure } from '../support/benchmark.js';
import { startFleet } from '../support/fleet.js';
import { tentacleIdentities } from '../support/identities.js';
import { connectRawTls, pingPong } from '../support/raw-tls.js';
import { registerMachines, runTask, startBenchServer } from '../support/reef-server.js';
import { distribution, interleave } from '../support/stats.js';
import type { operations as tlsOperations } from '../roles/tls.js';
import { startWorker } from '../support/workers.js';

const MACHINE = 'dispatch-1';

const benchmark: Benchmark = {
  name: 'dispatch',
  order: 1,
  title: 'a no-op call to an idle polling tentacle, from the call to the result',
  timeoutMs: 180_000,
  async run(context) {
    const rounds = context.param('rounds', 10);
    const callsPerRound = context.param('calls-per-round', 200);
    const tasksPerRound = context.param('tasks-per-round', 30);
    const [tentacle, echoIdentity, clientIdentity] = await tentacleIdentities(3);

    const bench = await startBenchServer();
    context.defer(() => bench.removeData());
    context.defer(() => bench.close());
    await registerMachines(bench.server, [{ name: MACHINE, thumbprint: tentacle!.thumbprint }]);
    const fleet = await startFleet(context, 1);
    await fleet.grow({ identities: [tentacle!], serverThumbprint: bench.thumbprint, address: `tcp://127.0.0.1:${bench.server.commsPort}` }, 1);

    const echo = await startWorker<typeof tlsOperations>('tls', 'echo');
    const socket = await connectRawTls(clientIdentity!, await echo.call('listen', { identity: echoIdentity!, mode: 'echo' }));
    context.defer(() => socket.destroy());

    const target = { thumbprint: tentacle!.thumbprint, name: MACHINE };
    const measures = {
      baseline: { perRound: callsPerRound, run: () => pingPong(socket) },
      comms: { perRound: callsPerRound, run: () => bench.server.comms.call(target, 'health.ping', {}) },
      rest: {
        perRound: tasksPerRound,
        run: async () => {
          const task = await runTask(bench.api, { kind: 'health-check', target: { machines: [MACHINE] } });
          if (task.state !== 'Success') throw new Error(`health-check task ${task.id} ended ${task.state}: ${task.error}`);
        },
      },
    };
    context.log('warming up');
    await interleave(1, measures);
    context.log(`${rounds} rounds of ${callsPerRound} pings, ${callsPerRound} comms calls, ${tasksPerRound} REST tasks`);
    const samples = await interleave(rounds, measures);
    const baseline = distribution(samples.baseline);
    const comms = distribution(samples.comms);
    const rest = distribution(samples.rest);

    const against = (what: string, p: 'p50' | 'p99', value: number): Figure => ({
      what: `${what}, ${p}`,
      value,
      unit: 'ms',
      baseline: { what: `raw mutual-TLS ping-pong ${p}`, value: baseline[p] },
      ...(p === 'p50' ? { target: { kind: 'ratio-at-most', limit: 3 } as const } : {}),
    });
    return {
      figures: [
        against('comms call (CommsServer.call health.ping)', 'p50', comms.p50),
        against('comms call (CommsServer.call health.ping)', 'p99', comms.p99),
        against('REST health-check task, POST to final state', 'p50', rest.p50),
        against('REST health-check task, POST to final state', 'p99', rest.p99),
      ],
      details: { baselineMs: baseline, commsCallMs: comms, restTaskMs: rest },
    };
  },
};

export default benchmark;

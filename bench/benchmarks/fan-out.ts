/**
 * fan-out: one run-script task running `true` on 1,000 machines, from the API call until
 * the server says the task ended, every machine's script finished and its outcome
 * stored. Each machine is a registered polling Tentacle (the real agent, spread over
 * several processes): the server starts the script under its ticket, follows its status
 * and log, stores the outcome and retires the ticket, as for any script. The scripts
 * really run (`bash` through the Tentacle's wrapper), so this machine spawns 2,000
 * processes on its two cores, work that a real fleet spreads over its own machines.
 */
import type { Benchmark } from '../support/benchmark.js';
import { startFleet } from '../support/fleet.js';
import { tentacleIdentities } from '../support/identities.js';
import { BENCH_ENVIRONMENT, registerMachines, runTask, startBenchServer } from '../support/reef-server.js';
import { since } from '../support/stats.js';

const benchmark: Benchmark = {
  name: 'fan-out',
  order: 5,
  title: 'run `true` on 1,000 tentacles',
  timeoutMs: 4 * 60_000,
  async run(context) {
    const count = context.param('tentacles', 1000);
    const processes = context.param('processes', 10);
    const runs = context.param('runs', 3);
    const identities = await tentacleIdentities(count);

    const bench = await startBenchServer();
    context.defer(() => bench.removeData());
    context.defer(() => bench.close());
    await registerMachines(bench.server, identities.map((identity, i) => ({ name: `fan-out-${i + 1}`, thumbprint: identity.thumbprint })));
    const fleet = await startFleet(context, processes);
    context.log(`connecting ${count} tentacles in ${processes} processes`);
    await fleet.grow({ identities, serverThumbprint: bench.thumbprint, address: `tcp://127.0.0.1:${bench.server.commsPort}` }, count);

    const seconds: number[] = [];
    for (let run = 0; run < runs; run++) {
      const started = performance.now();
      const task = await runTask(bench.api, { kind: 'run-script', target: { environment: BENCH_ENVIRONMENT }, script: { syntax: 'bash', body: 'true' } });
      seconds.push(since(started) / 1000);
      const succeeded = task.machines.filter((m) => m.state === 'Success').length;
      if (task.state !== 'Success' || succeeded !== count) throw new Error(`task ${task.id} ended ${task.state} with ${succeeded} of ${count} machines successful: ${task.error}`);
      context.log(`run ${run + 1}: ${seconds.at(-1)!.toFixed(1)} s`);
    }
    const median = [...seconds].sort((a, b) => a - b)[Math.floor(seconds.length / 2)]!;
    return {
      figures: [{ what: `run-script \`true\` on ${count.toLocaleString('en-US')} tentacles, API call to all finished (median of ${runs})`, value: median, unit: 's', target: { kind: 'at-most', limit: 10 } }],
      details: { tentacles: count, clientProcesses: processes, runsSeconds: seconds },
    };
  },
};

export default benchmark;

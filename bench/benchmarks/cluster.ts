/**
 * cluster: how long work takes when the API call lands on one node and the Tentacle is
 * connected to another, against the same work on the Tentacle's own node. Two server
 * nodes on one PostgreSQL database (a database of its own, dropped afterwards); one
 * Tentacle (the real agent code, in a fleet process) connected to node B only.
 *
 * Each sample is a REST health-check task followed to its final state over SSE, as
 * `reef tasks health-check --follow` does: posted to node B (same node), or to node A
 * (cross node: A stores the task and NOTIFYs, B claims it and calls the Tentacle, B
 * NOTIFYs the new state, A's event stream re-reads the store). Samples alternate in
 * rounds. Both nodes run in this process, so they also share one event loop; the cost
 * of crossing nodes is what PostgreSQL adds, not a network between hosts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import { createApiKey } from '../../src/server/auth/apikeys.js';
import { startReefServer, type RunningServer } from '../../src/server/runtime.js';
import { createTestDatabase } from '../../test/support/postgres.js';
import type { BenchContext, Benchmark, Figure } from '../support/benchmark.js';
import { startFleet } from '../support/fleet.js';
import { tentacleIdentities } from '../support/identities.js';
import { registerMachines, runTask } from '../support/reef-server.js';
import { distribution, interleave } from '../support/stats.js';

const MACHINE = 'cluster-1';

async function startNode(context: BenchContext, name: string, store: string, filesDir: string): Promise<{ server: RunningServer; api: ApiClient }> {
  const dataDir = await mkdtemp(join(tmpdir(), `reef-bench-${name}-`));
  context.defer(() => rm(dataDir, { recursive: true, force: true }));
  const server = await startReefServer({ dataDir, store, nodeName: name, filesDir, httpsPort: 0, commsPort: 0, host: '127.0.0.1' });
  context.defer(() => server.close());
  const apiKey = server.initialAdminKey ?? (await createApiKey(server.store, `bench-${name}`)).key;
  const api = new ApiClient({ server: `https://127.0.0.1:${server.httpsPort}`, apiKey, serverThumbprint: server.info.commsThumbprint });
  return { server, api };
}

const benchmark: Benchmark = {
  name: 'cluster',
  order: 7,
  title: 'dispatch across server nodes through PostgreSQL',
  timeoutMs: 180_000,
  async run(context) {
    const rounds = context.param('rounds', 10);
    const tasksPerRound = context.param('tasks-per-round', 20);
    const database = await createTestDatabase({ empty: true });
    context.defer(() => database.drop());
    const filesDir = await mkdtemp(join(tmpdir(), 'reef-bench-cluster-files-'));
    context.defer(() => rm(filesDir, { recursive: true, force: true }));

    // A first: it creates the schema and the cluster certificate B then adopts.
    const a = await startNode(context, 'bench-a', database.url, filesDir);
    const b = await startNode(context, 'bench-b', database.url, filesDir);
    const [tentacle] = await tentacleIdentities(1);
    await registerMachines(a.server, [{ name: MACHINE, thumbprint: tentacle!.thumbprint }]);
    const fleet = await startFleet(context, 1);
    await fleet.grow({ identities: [tentacle!], serverThumbprint: b.server.info.commsThumbprint, address: `tcp://127.0.0.1:${b.server.commsPort}` }, 1);

    // Dispatch: from the task stored (createdAt, by the node that took the POST) to its
    // machine started (startedAt, by the node that claimed it): the crossing itself.
    const dispatchMs = { sameNode: [] as number[], crossNode: [] as number[] };
    const healthCheck = (api: ApiClient, into: number[]) => async () => {
      const task = await runTask(api, { kind: 'health-check', target: { machines: [MACHINE] } });
      if (task.state !== 'Success') throw new Error(`health-check task ${task.id} ended ${task.state}: ${task.error}`);
      into.push(Date.parse(task.machines[0]!.startedAt!) - Date.parse(task.createdAt));
    };
    const measures = {
      sameNode: { perRound: tasksPerRound, run: healthCheck(b.api, dispatchMs.sameNode) },
      crossNode: { perRound: tasksPerRound, run: healthCheck(a.api, dispatchMs.crossNode) },
    };
    context.log('warming up');
    await interleave(1, measures);
    dispatchMs.sameNode.length = dispatchMs.crossNode.length = 0;
    context.log(`${rounds} rounds of ${tasksPerRound} tasks on each node`);
    const samples = await interleave(rounds, measures);
    const dispatch = { same: distribution(dispatchMs.sameNode), cross: distribution(dispatchMs.crossNode) };
    const task = { same: distribution(samples.sameNode), cross: distribution(samples.crossNode) };
    const figure = (what: string, baseline: string, measured: typeof dispatch, p: 'p50' | 'p99', limit?: number): Figure => ({
      what: `${what}, ${p}`,
      value: measured.cross[p],
      unit: 'ms',
      baseline: { what: `${baseline}, ${p}`, value: measured.same[p] },
      ...(limit !== undefined ? { target: { kind: 'at-most', limit } as const } : {}),
    });
    const dispatched = 'dispatch across nodes: task stored on node A to its machine started on node B';
    const sameDispatch = 'same-node dispatch';
    const whole = 'REST health-check task posted to node A, Tentacle on B, to final state (SSE on A)';
    const sameWhole = 'the same task posted to node B';
    return {
      figures: [
        figure(dispatched, sameDispatch, dispatch, 'p50', 20),
        figure(dispatched, sameDispatch, dispatch, 'p99'),
        figure(whole, sameWhole, task, 'p50'),
        figure(whole, sameWhole, task, 'p99'),
      ],
      details: { dispatchMs: dispatch, taskMs: task },
    };
  },
};

export default benchmark;

/**
 * fleet-cluster: a fleet on two server nodes sharing one PostgreSQL database (a database of
 * its own, dropped afterwards). Each node is a real server process (bench/roles/reef-server.ts)
 * with its own data directory and ports; the Tentacles are registered once, through node A.
 * Half the fleet polls node A, the other half node B, as a fleet behind two addresses would:
 * every machine (certificate) has its links on one node only.
 *
 * 1. Node A alone: its half connects. What it then holds is one node's count in this run,
 *    the baseline. By default a half is what one server process may hold on this machine
 *    (its open-file limit, less a reserve), the ceiling of the fleet benchmark's growing.
 * 2. Node B starts and its half connects while A holds its own. Both counts are read again
 *    at the end: the figure is what the two hold together, against twice one node's count.
 *    Each node's resident memory (after GC) per Tentacle is read as in the fleet benchmark.
 * 3. A health-check task on 1,000 machines (`--fan-out`, spread evenly over both halves; 0
 *    for every machine) is posted to node A's REST API and followed over SSE on A until it ends. Which node ran each
 *    machine's part is read from the store (`task_machines.owner_node`, against where the
 *    machine's Tentacle is linked): A's Tentacles must be served by A and B's by B, the
 *    work having reached B through the store and a NOTIFY only.
 *
 * The Tentacles are the real agent, in several client processes per node (each with its own
 * open-file limit); every certificate is a registered machine with a few links, as in fleet.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setInterval as every, setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { ApiClient } from '../../src/api/client.js';
import type { NodeView, TaskView } from '../../src/api/contract.js';
import { createTestDatabase } from '../../test/support/postgres.js';
import type { BenchContext, Benchmark } from '../support/benchmark.js';
import { startFleet, type Fleet } from '../support/fleet.js';
import { tentacleIdentities } from '../support/identities.js';
import { certificatesFor, openFileHardLimit } from '../support/limits.js';
import { growth, type Memory } from '../support/memory.js';
import { BENCH_ENVIRONMENT, runTask } from '../support/reef-server.js';
import { startServerWorker, type ServerWorker } from '../support/server-worker.js';
import { since } from '../support/stats.js';

/** Descriptors a server process needs besides its tentacle connections (as in fleet). */
const SERVER_FD_RESERVE = 500;
const NODES = ['fleet-a', 'fleet-b'] as const;

/** The node's live Tentacle connections, logged every 15 s while `growing` runs. */
async function withProgress<T>(context: BenchContext, node: ServerWorker, label: string, growing: Promise<T>): Promise<T> {
  const ticker = new AbortController();
  void (async () => {
    for await (const _ of every(15_000, undefined, { signal: ticker.signal })) {
      context.log(`${label}: ${(await node.worker.call('links')).toLocaleString('en-US')} connected`);
    }
  })().catch(() => {});
  try {
    return await growing;
  } finally {
    ticker.abort();
  }
}

/** The client processes' memory in MiB (the simulated fleet's own cost). */
async function fleetMiB(fleet: Fleet): Promise<number[]> {
  const memories: Memory[] = await Promise.all(fleet.workers.map((worker) => worker.call('memory')));
  return memories.map((m) => Math.round(m.rss / 2 ** 20));
}

/** Seconds over which the CPU of an idle fleet is measured. */
const IDLE_SECONDS = 10;

/**
 * What the connected fleet costs while idle (the heartbeat: on both ends of each link a
 * check every 2.5 s, a PING after 7.5 s of silence): CPU ms per second of each node, and of
 * each node's client processes together, over IDLE_SECONDS.
 */
async function idleCpu(nodes: readonly ServerWorker[], fleets: readonly Fleet[]): Promise<{ nodes: number[]; clients: number[] }> {
  const fleetCpuMs = async (fleet: Fleet) => (await Promise.all(fleet.workers.map((worker) => worker.call('cpuMs')))).reduce((sum, ms) => sum + ms, 0);
  const read = () => Promise.all([...nodes.map((node) => node.worker.call('cpuMs')), ...fleets.map(fleetCpuMs)]);
  const before = await read();
  await sleep(IDLE_SECONDS * 1000);
  const used = (await read()).map((ms, i) => Math.round((ms - before[i]!) / IDLE_SECONDS));
  return { nodes: used.slice(0, nodes.length), clients: used.slice(nodes.length) };
}

/**
 * Counters of a node's /metrics: the cluster bus's notifications and events (sent and
 * received), and per store operation how many ran and the seconds they took in all (pool
 * wait included), e.g. `store:getMachine:count`.
 */
async function counters(node: ServerWorker): Promise<Record<string, number>> {
  const text = await node.worker.call('metricsText');
  const found: Record<string, number> = {};
  for (const [, name, labels, value] of text.matchAll(/^reef_cluster_bus_(notifications|events|reconnects)_total(\{[^}]*\})?\s+(\S+)/gm)) {
    const direction = /direction="(\w+)"/.exec(labels ?? '')?.[1];
    found[direction ? `bus:${name}_${direction}` : `bus:${name}`] = Number(value);
  }
  for (const [, part, labels, value] of text.matchAll(/^reef_store_operation_duration_seconds_(sum|count)(\{[^}]*\})\s+(\S+)/gm)) {
    const operation = /operation="([^"]+)"/.exec(labels!)?.[1];
    if (operation) found[`store:${operation}:${part === 'sum' ? 'seconds' : 'count'}`] = Number(value);
  }
  return found;
}

const benchmark: Benchmark = {
  name: 'fleet-cluster',
  order: 12,
  title: 'a fleet on two server nodes sharing one PostgreSQL database',
  timeoutMs: 30 * 60_000,
  async run(context) {
    const perNodeCeiling = openFileHardLimit() - SERVER_FD_RESERVE;
    const wanted = context.param('tentacles', 2 * Math.min(perNodeCeiling, 19_500));
    const half = Math.floor(Math.min(wanted, 2 * perNodeCeiling) / 2);
    const processes = context.param('processes', 4);
    const window = context.param('window', 32);
    const connectTimeoutMs = context.param('connect-timeout-seconds', 300) * 1000;
    /** Machines of the health-check, evenly spread over both halves; 0: every machine. */
    const fanOut = context.param('fan-out', 1000);
    // Per node; several links share a certificate (see certificatesFor), unless `--certificates` (both nodes') asks for more.
    const certificates = Math.min(half, Math.ceil(context.param('certificates', 2 * certificatesFor(half)) / 2));
    if (half * 2 < wanted) context.log(`${wanted} asked; each node's open-file limit allows ${perNodeCeiling}, so ${half} per node`);
    const identities = await tentacleIdentities(2 * certificates);
    // Machines bench-1..bench-C poll node A, bench-(C+1)..bench-2C node B.
    const own = [identities.slice(0, certificates), identities.slice(certificates)] as const;

    const database = await createTestDatabase({ empty: true });
    context.defer(() => database.drop());
    const filesDir = await mkdtemp(join(tmpdir(), 'reef-bench-fleet-cluster-files-'));
    context.defer(() => rm(filesDir, { recursive: true, force: true }));
    const startNode = async (name: string, machines: typeof identities) => {
      const node = await startServerWorker(machines, undefined, { cluster: { store: database.url, nodeName: name, filesDir } });
      context.defer(() => rm(node.dataDir, { recursive: true, force: true }));
      return node;
    };
    const connect = async (node: ServerWorker, fleet: Fleet, ids: typeof identities, label: string) => {
      const started = performance.now();
      const group = { identities: ids, serverThumbprint: node.thumbprint, address: `tcp://127.0.0.1:${node.commsPort}`, window, connectTimeoutMs };
      await withProgress(context, node, label, fleet.grow(group, half));
      return since(started) / 1000;
    };

    // 1. Node A alone (it creates the schema and the cluster certificate; the machines are registered through it).
    context.log(`node A: registering ${identities.length} machines`);
    const registering = performance.now();
    const a = await startNode(NODES[0], identities);
    const registerSeconds = since(registering) / 1000;
    const aBefore = await a.worker.call('memory');
    const fleetA = await startFleet(context, processes);
    context.log(`node A alone: ${half} polling tentacles in ${processes} processes`);
    const connectA = await connect(a, fleetA, own[0], 'node A');
    const alone = await a.worker.call('links');
    const aAlone = growth(aBefore, await a.worker.call('memory'), alone);
    context.log(`node A alone: ${alone} connected in ${connectA.toFixed(1)} s, ${aAlone.rssKiB.toFixed(1)} KiB per tentacle`);

    // 2. Node B joins; its half connects while A holds its own.
    const b = await startNode(NODES[1], []);
    if (b.thumbprint !== a.thumbprint) throw new Error(`node B presents ${b.thumbprint}, not the cluster certificate ${a.thumbprint}`);
    const bBefore = await b.worker.call('memory');
    const fleetB = await startFleet(context, processes);
    context.log(`node B: ${half} polling tentacles in ${processes} processes, node A holding ${alone}`);
    const connectB = await connect(b, fleetB, own[1], 'node B');
    const held = { a: await a.worker.call('links'), b: await b.worker.call('links') };
    const memory = { a: growth(aBefore, await a.worker.call('memory'), held.a), b: growth(bBefore, await b.worker.call('memory'), held.b) };
    context.log(`both: A ${held.a}, B ${held.b} (B's half in ${connectB.toFixed(1)} s); ${memory.a.rssKiB.toFixed(1)} and ${memory.b.rssKiB.toFixed(1)} KiB per tentacle`);
    const apiA = new ApiClient({ server: `https://127.0.0.1:${a.httpsPort}`, apiKey: a.apiKey, serverThumbprint: a.thumbprint });
    const nodes = (await apiA.json<{ items: NodeView[] }>('GET', '/api/nodes')).items;
    const clientMiB = { a: await fleetMiB(fleetA), b: await fleetMiB(fleetB) };
    const idle = await idleCpu([a, b], [fleetA, fleetB]);
    context.log(`idle: nodes A and B ${idle.nodes.join(' and ')} ms of CPU a second, their client processes ${idle.clients.join(' and ')}`);

    // 3. The fan-out, posted to node A.
    const machines = identities.length;
    const sample = fanOut > 0 && fanOut < machines ? Array.from({ length: fanOut }, (_, i) => Math.floor((i * machines) / fanOut)) : undefined;
    const target = sample ? { machines: sample.map((i) => `bench-${i + 1}`) } : { environment: BENCH_ENVIRONMENT };
    const expected = sample ? sample.length : machines;
    const expectedOn = { a: sample ? sample.filter((i) => i < certificates).length : certificates, b: 0 };
    expectedOn.b = expected - expectedOn.a;
    context.log(`health-check on ${expected} machines (${expectedOn.a} polling A, ${expectedOn.b} polling B), posted to node A`);
    const countersBefore = { a: await counters(a), b: await counters(b) };
    const posted = performance.now();
    const task: TaskView = await runTask(apiA, { kind: 'health-check', target });
    const fanOutSeconds = since(posted) / 1000;
    const succeeded = task.machines.filter((m) => m.state === 'Success').length;
    const countersAfter = { a: await counters(a), b: await counters(b) };
    const runs = await runsByNode(database.url, task.id);
    // Runs by the node its Tentacle is linked to; any other (a handover, a claim by the wrong node) counts for neither.
    const ranByOwnNode = (node: string) => runs.filter((r) => r.ranOn === node && r.linkedTo === node).reduce((sum, r) => sum + r.runs, 0);
    context.log(`task ${task.id} ${task.state} in ${fanOutSeconds.toFixed(1)} s: ${succeeded} of ${expected} succeeded`);
    for (const r of runs) context.log(`  ran on ${r.ranOn}, tentacle linked to ${r.linkedTo}: ${r.runs} runs, started ${r.firstStartedMs}-${r.lastStartedMs} ms after the task was stored`);

    const n = (value: number) => value.toLocaleString('en-US');
    return {
      figures: [
        {
          what: `tentacles held by two nodes on one PostgreSQL database (${n(half)} polling each; one process's open-file limit allows ${n(perNodeCeiling)})`,
          value: held.a + held.b,
          unit: 'tentacles',
          baseline: { what: 'one node: node A alone, before node B started', value: alone },
          target: { kind: 'ratio-at-least', limit: 2 },
        },
        { what: `server RSS per tentacle, node A, at ${n(held.a)}`, value: memory.a.rssKiB, unit: 'KiB', baseline: { what: `node A alone, at ${n(alone)}`, value: aAlone.rssKiB } },
        { what: `server RSS per tentacle, node B, at ${n(held.b)}`, value: memory.b.rssKiB, unit: 'KiB' },
        { what: `node B's ${n(half)} connecting while node A held its own`, value: connectB, unit: 's', baseline: { what: `node A's ${n(half)} connecting alone`, value: connectA } },
        { what: `health-check on ${n(expected)} machines (${n(expectedOn.a)} polling A, ${n(expectedOn.b)} polling B), posted to node A: API call to task finished (SSE on A)`, value: fanOutSeconds, unit: 's' },
        { what: 'machines of that task that succeeded', value: succeeded, unit: 'machines', target: { kind: 'at-least', limit: expected } },
        { what: 'machine runs started by node A for machines polling A', value: ranByOwnNode(NODES[0]), unit: 'machines', target: { kind: 'at-least', limit: expectedOn.a } },
        { what: 'machine runs started by node B for machines polling B (the task reached B through the store and a NOTIFY)', value: ranByOwnNode(NODES[1]), unit: 'machines', target: { kind: 'at-least', limit: expectedOn.b } },
      ],
      details: {
        tentaclesPerNode: half,
        perNodeCeiling,
        certificates: identities.length,
        clientProcessesPerNode: processes,
        registerSeconds,
        connectSeconds: { a: connectA, b: connectB },
        held: { aAlone: alone, ...held },
        memory: { aAlone, ...memory },
        clientProcessRssMiB: clientMiB,
        /** CPU ms per second with every tentacle connected and idle, by node and by each node's client processes together. */
        idleCpuMsPerSecond: { nodes: { a: idle.nodes[0], b: idle.nodes[1] }, clients: { a: idle.clients[0], b: idle.clients[1] } },
        connectFailures: { a: await fleetA.failures(), b: await fleetB.failures() },
        nodesApi: nodes.map((node) => ({ name: node.name, alive: node.alive, connectedTentacles: node.connectedTentacles })),
        fanOut: {
          taskId: task.id,
          state: task.state,
          error: task.error,
          machines: expected,
          succeeded,
          seconds: fanOutSeconds,
          storeSeconds: task.finishedAt ? (Date.parse(task.finishedAt) - Date.parse(task.createdAt)) / 1000 : null,
          runsByNode: runs,
          failed: task.machines.filter((m) => m.state !== 'Success').slice(0, 10).map((m) => ({ machine: m.machineName, state: m.state, error: m.error })),
          duringTask: { a: delta(countersBefore.a, countersAfter.a), b: delta(countersBefore.b, countersAfter.b) },
        },
      },
    };
  },
};

interface RunsRow {
  ranOn: string | null;
  linkedTo: string | null;
  runs: number;
  /** From the task stored (by node A) to the first and the last of these runs started, and the last finished. */
  firstStartedMs: number | null;
  lastStartedMs: number | null;
  lastFinishedMs: number | null;
}

/** The task's machine runs by the node that ran them (the last to claim each) and the node their Tentacle is linked to. */
async function runsByNode(url: string, taskId: string): Promise<RunsRow[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const ms = (column: string) => `round(extract(epoch FROM ${column} - t.created_at) * 1000)::int`;
  try {
    const { rows } = await client.query<RunsRow>(
      `SELECT tm.owner_node AS "ranOn", l.node_name AS "linkedTo", count(*)::int AS runs,
              ${ms('min(tm.started_at)')} AS "firstStartedMs", ${ms('max(tm.started_at)')} AS "lastStartedMs",
              ${ms('max(tm.finished_at)')} AS "lastFinishedMs"
         FROM task_machines tm JOIN tasks t ON t.id = tm.task_id JOIN machines m ON m.id = tm.machine_id
         LEFT JOIN tentacle_links l ON l.thumbprint = m.thumbprint
        WHERE tm.task_id = $1 GROUP BY 1, 2, t.created_at ORDER BY 1, 2`,
      [taskId],
    );
    return rows;
  } finally {
    await client.end();
  }
}

/** What changed between two readings of counters (those that did not are left out). */
function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([key, value]) => [key, value - (before[key] ?? 0)]).filter(([, change]) => change !== 0));
}

export default benchmark;

/**
 * Three `reef server run` nodes on one real PostgreSQL database (a database of its own),
 * sharing work: a task created on one node runs on a tentacle connected to another; a
 * tentacle polling every node (`tentacle poll-server`) runs each task once; tentacles
 * behind a real nginx `stream` round-robin address work wherever they land; and kill -9 of
 * the node holding a tentacle's connection mid-script moves the script's supervision to
 * another node, which completes it once with its whole log.
 *
 * Two test files, each with a cluster of its own, so they run side by side:
 * cluster-sharing.test.ts (work shared between the nodes) and cluster-failover.test.ts
 * (the kill -9, which waits for the dead node's lease to lapse).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import type { LogPage, MachineView, NodeView, TaskView } from '../../src/api/contract.js';
import { startNginx } from '../support/nginx.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import type { Daemon } from '../support/tinyproxy.js';
import { cli, freePort, ok, startAgent, startServer, stopAll, tempDir, waitFor, type AgentProcess, type ServerProcess } from './harness.js';

const NODES = ['node-a', 'node-b', 'node-c'] as const;
type NodeName = (typeof NODES)[number];
const FINAL = ['Success', 'Failed', 'Cancelled', 'TimedOut'];
/** The tentacles behind the nginx round-robin address. */
const BALANCED = Array.from({ length: 6 }, (_, i) => `lb-${i + 1}`);

export type ClusterPart = 'sharing' | 'failover';

export function describeCluster(part: ClusterPart): void {
describe(`three server nodes on one PostgreSQL database (${part})`, () => {
  let database: TestDatabase;
  let nginx: Daemon;
  let root: string;
  let scratch: string;
  let apiKey: string;
  const nodes = new Map<NodeName, ServerProcess>();
  const apis = new Map<NodeName, ApiClient>();
  const agents = new Map<string, AgentProcess>();

  const node = (name: NodeName) => nodes.get(name)!;
  const api = (name: NodeName) => apis.get(name)!;
  const tentacle = (args: string[]) => ok('tentacle', args, { REEF_TENTACLE_ROOT: root });
  const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const numbered = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}`);

  /** Creates a tentacle instance and registers it through node `via` to poll `commsPort`. */
  async function register(name: string, via: NodeName, commsPort: number): Promise<void> {
    await tentacle(['create-instance', '--instance', name]);
    await tentacle(['new-certificate', '--instance', name]);
    await tentacle(['register-with', '--instance', name, '--server', node(via).url, '--server-thumbprint', node(via).thumbprint, '--apiKey', apiKey,
      '--server-comms-port', String(commsPort), '--environment', 'Cluster', '--role', name, '--name', name]);
  }

  /** Starts the agent of an instance the `before` hook registered. */
  async function enrol(name: string): Promise<void> {
    agents.set(name, await startAgent(root, name));
  }

  async function machine(name: string, via: NodeName = 'node-a'): Promise<MachineView> {
    return api(via).json<MachineView>('GET', `/api/machines/${encodeURIComponent(name)}`);
  }

  async function runScript(via: NodeName, machines: string[], body: string): Promise<string> {
    const task = await api(via).json<TaskView>('POST', '/api/tasks', { body: { kind: 'run-script', target: { machines }, script: { syntax: 'bash', body } } });
    return task.id;
  }

  async function finished(via: NodeName, taskId: string, timeoutMs = 90_000): Promise<TaskView> {
    return waitFor(`task ${taskId} to finish`, async () => {
      const task = await api(via).json<TaskView>('GET', `/api/tasks/${taskId}`);
      return FINAL.includes(task.state) ? task : undefined;
    }, timeoutMs);
  }

  async function stdout(via: NodeName, taskId: string): Promise<string[]> {
    const page = await api(via).json<LogPage>('GET', `/api/tasks/${taskId}/log?after=0&limit=10000`);
    return page.items.filter((l) => l.stream === 'stdout').map((l) => l.text);
  }

  before(async () => {
    database = await createTestDatabase({ empty: true });
    root = await tempDir('cluster-tentacles');
    scratch = await tempDir('cluster-scratch');
    const files = join(await tempDir('cluster-files'), 'files');
    await mkdir(files);
    const start = async (name: NodeName) => {
      const server = await startServer({
        dataDir: await tempDir(`cluster-${name}`),
        httpsPort: await freePort(),
        commsPort: await freePort(),
        name,
        extraArgs: ['--store', database.url, '--node-name', name, '--files-dir', files],
      });
      nodes.set(name, server);
    };
    // The first alone: it creates the schema, the admin key and the cluster certificate,
    // which the others then adopt.
    await start(NODES[0]);
    await Promise.all(NODES.slice(1).map(start));
    apiKey = node('node-a').adminKey!;
    assert.ok(apiKey, 'the first node prints the admin key');
    for (const name of NODES) apis.set(name, new ApiClient({ server: node(name).url, apiKey, serverThumbprint: node(name).thumbprint }));
    nginx = await startNginx({
      stream: true,
      config: ({ ports }) => `stream {
  upstream reef_nodes { ${NODES.map((n) => `server 127.0.0.1:${node(n).commsPort} max_fails=1 fail_timeout=30s;`).join(' ')} }
  server { listen 127.0.0.1:${ports[0]}; proxy_pass reef_nodes; proxy_connect_timeout 2s; }
}`,
    });
    // Every test's tentacles registered up front and side by side: each CLI process costs
    // a second of start-up (the instance index and config files are locked against
    // concurrent writers). Their agents start in the tests that use them.
    await Promise.all(
      part === 'sharing'
        ? [
            register('on-b', 'node-a', node('node-b').commsPort),
            register('everywhere', 'node-a', node('node-a').commsPort),
            ...BALANCED.map((name) => register(name, 'node-c', nginx.port)),
          ]
        : [register('roamer', 'node-a', nginx.port)],
    );
  });

  after(async () => {
    await nginx?.stop();
    await stopAll();
    await database?.drop();
  });

  if (part === 'sharing') {
    test('every node presents the cluster certificate, and `reef nodes list` shows all three online', async () => {
      assert.equal(new Set(NODES.map((n) => node(n).thumbprint)).size, 1, 'one thumbprint for the cluster');
      const listed = await cli('reef', ['nodes', 'list'], node('node-b').env(apiKey));
      assert.equal(listed.code, 0, listed.stderr);
      for (const name of NODES) assert.match(listed.stdout, new RegExp(`^${name}( \\(this node\\))?\\s+online`, 'm'));
      assert.match(listed.stdout, /node-b \(this node\)/);
      const items = (await api('node-c').json<{ items: NodeView[] }>('GET', '/api/nodes')).items;
      assert.deepEqual(items.map((n) => [n.name, n.alive, n.commsPort]), NODES.map((n) => [n, true, node(n).commsPort]));
    });

    test('a task created on node A runs on a tentacle connected to node B; A follows its log live', async () => {
      await enrol('on-b');
      await waitFor('on-b to connect to node B', async () => (await machine('on-b', 'node-c')).nodes.some((n) => n.name === 'node-b'));
      const seen = await machine('on-b', 'node-a');
      assert.equal(seen.online, true, 'node A knows it is online, though connected elsewhere');
      assert.deepEqual(seen.connections, [], 'no connection to node A itself');
      const followed = await cli('reef', ['tasks', 'run-script', '--machine', 'on-b', '--script', 'for i in $(seq 1 5); do echo "line $i"; sleep 0.2; done', '--follow'], node('node-a').env(apiKey));
      assert.equal(followed.code, 0, followed.stderr);
      const printed = followed.stdout.split('\n').filter((l) => l.startsWith('[on-b] line ')).map((l) => l.slice('[on-b] '.length));
      assert.deepEqual(printed, numbered(5), 'the follower on A printed every line once, in order');
      const nodesSeen = (await api('node-a').json<{ items: NodeView[] }>('GET', '/api/nodes')).items;
      assert.equal(nodesSeen.find((n) => n.name === 'node-b')!.connectedTentacles, 1);
    });

    test('a tentacle polling every node (poll-server) runs each of 30 tasks once, wherever they were created', async () => {
      await enrol('everywhere');
      for (const other of ['node-b', 'node-c'] as const) {
        await tentacle(['poll-server', '--instance', 'everywhere', '--server', node(other).url, '--server-thumbprint', node(other).thumbprint, '--apiKey', apiKey,
          '--server-comms-port', String(node(other).commsPort)]);
      }
      await waitFor('everywhere to poll all three nodes', async () => (await machine('everywhere')).nodes.length === 3);
      const marker = join(scratch, 'everywhere.marker');
      const ids = await Promise.all(Array.from({ length: 30 }, (_, i) => runScript(NODES[i % 3]!, ['everywhere'], `echo task-${i} >> ${marker}; echo done-${i}`)));
      for (const [i, id] of ids.entries()) {
        const done = await finished(NODES[(i + 1) % 3]!, id);
        assert.equal(done.state, 'Success', JSON.stringify(done.machines));
        assert.deepEqual(await stdout(NODES[(i + 2) % 3]!, id), [`done-${i}`]);
      }
      assert.deepEqual(lines(marker).sort(), Array.from({ length: 30 }, (_, i) => `task-${i}`).sort(), 'every task ran exactly once');
    });

    test('six tentacles behind one nginx round-robin address work whichever node they land on', async () => {
      const names = BALANCED;
      for (const name of names) await enrol(name);
      await waitFor('the balanced tentacles to connect', async () => {
        for (const name of names) if (!(await machine(name)).online) return false;
        return true;
      });
      const holders = new Set<string>();
      for (const name of names) for (const n of (await machine(name)).nodes) holders.add(n.name);
      assert.ok(holders.size >= 2, `spread over ${[...holders].join(', ')}`);
      const taskId = await runScript('node-a', names, 'echo "hello from $(hostname)"');
      const done = await finished('node-b', taskId);
      assert.equal(done.state, 'Success', JSON.stringify(done.machines));
      assert.equal(done.machines.length, 6);
    });

  }

  if (part === 'failover') {
    test('kill -9 of the node holding the connection mid-script: the tentacle reconnects elsewhere, the script completes once with its whole log', async (t) => {
      await enrol('roamer');
      const holder = await waitFor('roamer to connect', async () => (await machine('roamer')).nodes[0]?.name as NodeName | undefined);
      const survivor = NODES.find((n) => n !== holder)!;
      const marker = join(scratch, 'roamer.marker');
      const taskId = await runScript(survivor, ['roamer'], `echo ran >> ${marker}; for i in $(seq 1 60); do echo "line $i"; sleep 0.25; done`);
      await waitFor('the script to print', async () => (await stdout(survivor, taskId)).length >= 5);
      const killedAt = Date.now();
      node(holder).child.kill('SIGKILL');
      const moved = await waitFor('roamer to reconnect to another node', async () => {
        const now = (await machine('roamer', survivor)).nodes.map((n) => n.name);
        return now.length > 0 && !now.includes(holder) ? now : undefined;
      }, 30_000);
      t.diagnostic(`killed ${holder}; roamer reconnected to ${moved.join(', ')} after ${Date.now() - killedAt} ms`);
      const done = await finished(survivor, taskId, 120_000);
      t.diagnostic(`task ${done.state} ${Date.now() - killedAt} ms after the kill`);
      assert.equal(done.state, 'Success', JSON.stringify(done.machines));
      assert.deepEqual(await stdout(survivor, taskId), numbered(60), 'the whole log, once and in order');
      assert.deepEqual(lines(marker), ['ran'], 'the script started once');
      const after = (await api(survivor).json<{ items: NodeView[] }>('GET', '/api/nodes')).items;
      await waitFor(`${holder} to be reported down`, async () => {
        const dead = (await api(survivor).json<{ items: NodeView[] }>('GET', '/api/nodes')).items.find((n) => n.name === holder)!;
        return !dead.alive && !dead.stopped;
      }, 30_000);
      assert.equal(after.length, 3);
    });
  }
});
}

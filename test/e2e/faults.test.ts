/**
 * Fault injection end to end (issue 8, scope 1): real `reef` and `tentacle` processes with
 * a TCP fault forwarder (test/support/forwarder.ts) between the polling Tentacle and the
 * server's comms port. The Tentacle is the forwarder's client, so "upstream" is
 * tentacle -> server and "downstream" is server -> tentacle (a push-file's bytes).
 *
 * - a half-open link (the forwarder blackholes both ways) is noticed by heartbeats within
 *   30 s and the Tentacle reconnects once the link is back;
 * - a push-file cut in the middle resumes from the Tentacle's partial offset and lands with
 *   its SHA-256 intact;
 * - a script's log is complete, once and in order, after its link was killed three times.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import type { LogPage, MachineView, TaskView } from '../../src/api/contract.js';
import { startForwarder, type Forwarder } from '../support/forwarder.js';
import { cli, freePort, ok, startAgent, startServer, stopAll, tempDir, waitFor, type AgentProcess, type ServerProcess } from './harness.js';

const MACHINE = 'faulty-1';

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Reef over a faulty link (fault forwarder between tentacle and server)', () => {
  let server: ServerProcess;
  let forwarder: Forwarder;
  let agent: AgentProcess;
  let root: string;
  let apiKey: string;
  let api: ApiClient;

  const tentacle = (args: string[]) => ok('tentacle', args, { REEF_TENTACLE_ROOT: root });

  async function machine(): Promise<MachineView> {
    return api.json<MachineView>('GET', `/api/machines/${MACHINE}`);
  }

  async function finished(taskId: string, timeoutMs = 60_000): Promise<TaskView> {
    return waitFor(`task ${taskId} to finish`, async () => {
      const task = await api.json<TaskView>('GET', `/api/tasks/${taskId}`);
      return ['Success', 'Failed', 'Cancelled', 'TimedOut'].includes(task.state) ? task : undefined;
    }, timeoutMs);
  }

  async function logOf(taskId: string): Promise<LogPage['items']> {
    return (await api.json<LogPage>('GET', `/api/tasks/${taskId}/log?after=0&limit=10000`)).items;
  }

  before(async () => {
    const dataDir = await tempDir('faults-server');
    root = await tempDir('faults-tentacles');
    // Pickup timeout: long enough to ride out every reconnect below, short enough to fail fast if one never comes.
    server = await startServer({ dataDir, httpsPort: await freePort(), commsPort: await freePort(), pickupTimeoutSeconds: 45, name: 'faults-server' });
    apiKey = server.adminKey!;
    api = new ApiClient({ server: server.url, apiKey, serverThumbprint: server.thumbprint });
    forwarder = await startForwarder({ targetPort: server.commsPort });

    await tentacle(['create-instance', '--instance', 'Faulty']);
    await tentacle(['new-certificate', '--instance', 'Faulty']);
    await tentacle(['register-with', '--instance', 'Faulty', '--server', server.url, '--server-thumbprint', server.thumbprint, '--apiKey', apiKey,
      '--server-comms-port', String(forwarder.port), '--environment', 'Faults', '--role', 'web', '--name', MACHINE]);
    agent = await startAgent(root, 'Faulty');
    await waitFor('the tentacle to connect through the forwarder', async () => (await machine()).online && forwarder.connections === 1);
  });

  after(async () => {
    await forwarder?.close();
    await stopAll();
  });

  test('a half-open link is noticed within 30 s and the tentacle reconnects once it is back', async (t) => {
    const acceptedBefore = forwarder.accepted;
    const pausedAt = Date.now();
    forwarder.pause(); // both sockets stay open, every byte vanishes: no FIN, no RST
    await waitFor('the server to drop the half-open connection', async () => (await machine()).connections.length === 0, 30_000);
    const noticedMs = Date.now() - pausedAt;
    t.diagnostic(`the server noticed the half-open link after ${noticedMs} ms (heartbeat window 25 s)`);
    assert.ok(noticedMs <= 30_000, `noticed after ${noticedMs} ms`);
    assert.equal((await machine()).online, false);

    forwarder.resume();
    const m = await waitFor('the tentacle to reconnect', async () => {
      const view = await machine();
      return view.online ? view : undefined;
    }, 30_000);
    t.diagnostic(`back online ${Date.now() - pausedAt} ms after the pause`);
    assert.equal(m.connections.length, 1);
    assert.ok(forwarder.accepted > acceptedBefore, 'the tentacle came back on a new connection');
    // The server's side of the old link ended by its heartbeat; the tentacle's own heartbeat
    // may have fired first or its link broke on the corrupt stream after resume: either way it said why.
    assert.match(agent.log(), /comms: disconnected from server/);
  });

  test('a 30 MiB push-file cut in the middle resumes from the tentacle\'s offset and the hash matches', async (t) => {
    const size = 30 * 1024 * 1024;
    const source = join(await tempDir('faults-payload'), 'payload.bin');
    await writeFile(source, randomBytes(size));
    const config = JSON.parse(await tentacle(['show-configuration', '--instance', 'Faulty'])) as { app?: string; config?: { app: string } };
    const destination = join(config.app ?? config.config!.app, 'drop', 'cut.bin');

    // Server -> tentacle is downstream. Cut the live link once 12 MiB went that way, then
    // clear the rule the moment it fired so the reconnected link carries the rest intact.
    let cuts = 0;
    const onDisconnect = () => {
      cuts++;
      forwarder.cutAfter(Infinity);
    };
    forwarder.once('disconnect', onDisconnect);
    forwarder.cutAfter(12 * 1024 * 1024, 'downstream');
    try {
      const result = await cli('reef', ['tasks', 'push-file', source, destination, '--machine', MACHINE, '--follow'], server.env(apiKey));
      if (result.code !== 0) assert.fail(`${result.stdout}\n${result.stderr}\nthe tentacle: ${await agent.diagnose()}`);
    } finally {
      forwarder.off('disconnect', onDisconnect);
      forwarder.cutAfter(Infinity);
    }
    assert.equal(cuts, 1, 'the link was cut during the upload');

    const task = (await api.json<{ items: TaskView[] }>('GET', '/api/tasks?limit=1')).items[0]!;
    assert.equal(task.kind, 'push-file');
    assert.equal(task.state, 'Success');
    const texts = (await logOf(task.id)).map((l) => l.text);
    assert.ok(texts.some((text) => /The connection dropped during the upload/.test(text)), texts.join('\n'));
    const resumed = texts.map((text) => /Resuming the upload of .* at byte (\d+) of (\d+)\./.exec(text)).find((m) => m);
    assert.ok(resumed, `a resume line in:\n${texts.join('\n')}`);
    const offset = Number(resumed[1]);
    t.diagnostic(`cut after 12 MiB downstream; resumed at byte ${offset} of ${size}`);
    assert.ok(offset > 0 && offset < size, `resumed at byte ${offset} of ${size}`);
    assert.equal(Number(resumed[2]), size);
    assert.equal(await sha256File(destination), await sha256File(source));
  });

  test('a script\'s log is complete, once and in order, after its link was killed three times', async (t) => {
    const script = 'for i in $(seq 1 200); do echo "line $i"; sleep 0.03; done';
    const taskId = await ok('reef', ['tasks', 'run-script', '--machine', MACHINE, '--script', script], server.env(apiKey));
    await waitFor('the first lines', async () => (await logOf(taskId)).some((l) => l.text === 'line 1'), 30_000).catch(async (err: Error) => {
      throw new Error(`${err.message}; the tentacle: ${await agent.diagnose()}`);
    });
    const acceptedBefore = forwarder.accepted;
    for (let kill = 0; kill < 3; kill++) {
      await sleep(1500);
      const live = forwarder.connections;
      forwarder.killAll();
      t.diagnostic(`kill ${kill + 1}: reset ${live} live connection(s)`);
    }
    const task = await finished(taskId);
    assert.equal(task.state, 'Success', JSON.stringify(task.machines));
    assert.ok(forwarder.accepted >= acceptedBefore + 2, `the tentacle reconnected after the kills (${forwarder.accepted - acceptedBefore} new connections)`);
    const stdout = (await logOf(taskId)).filter((l) => l.stream === 'stdout').map((l) => l.text);
    assert.deepEqual(stdout, Array.from({ length: 200 }, (_, i) => `line ${i + 1}`));
  });
});

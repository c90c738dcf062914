/**
 * Reef's main job end to end, with real `reef` and `tentacle` processes driven through
 * their command lines: register a polling target, a listening target and a worker; run
 * scripts, push a file, cancel, refuse a deleted machine, answer bad input clearly, fail
 * work for an offline tentacle, survive a server kill -9. One test file per store
 * (main-job-sqlite.test.ts, main-job-postgres.test.ts), so the two run side by side.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import type { LogPage, MachineView, TaskView } from '../../src/api/contract.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { cli, freePort, ok, startAgent, startServer, stopAll, tempDir, waitFor, type AgentProcess, type ServerProcess, processGone, sha256File } from './harness.js';

export function describeMainJob(storeKind: 'sqlite' | 'postgres'): void {
describe(`Reef server and Tentacles (${storeKind} store)`, () => {
  let server: ServerProcess;
  let serverOptions: Parameters<typeof startServer>[0];
  let database: TestDatabase | undefined;
  let dataDir: string;
  let root: string;
  let apiKey: string;
  let api: ApiClient;
  const agents = new Map<string, AgentProcess>();
  let ports: { https: number; comms: number };

  const tentacle = (args: string[]) => ok('tentacle', args, { REEF_TENTACLE_ROOT: root });
  const reef = (args: string[]) => cli('reef', args, server.env(apiKey));

  async function setUpInstance(instance: string, register: string[]) {
    await tentacle(['create-instance', '--instance', instance]);
    await tentacle(['new-certificate', '--instance', instance]);
    await tentacle([...register, '--instance', instance, '--server', server.url, '--server-thumbprint', server.thumbprint, '--apiKey', apiKey, '--server-comms-port', String(server.commsPort)]);
  }

  async function machine(name: string): Promise<MachineView> {
    return api.json<MachineView>('GET', `/api/machines/${encodeURIComponent(name)}`);
  }

  async function finished(taskId: string): Promise<TaskView> {
    return waitFor(`task ${taskId} to finish`, async () => {
      const task = await api.json<TaskView>('GET', `/api/tasks/${taskId}`);
      return ['Success', 'Failed', 'Cancelled', 'TimedOut'].includes(task.state) ? task : undefined;
    }, 90_000);
  }

  async function logText(taskId: string): Promise<LogPage['items']> {
    return (await api.json<LogPage>('GET', `/api/tasks/${taskId}/log?after=0&limit=10000`)).items;
  }

  before(async () => {
    dataDir = await tempDir('server');
    root = await tempDir('tentacles');
    ports = { https: await freePort(), comms: await freePort() };
    // PostgreSQL: an empty database, so the server's own migrations run.
    database = storeKind === 'postgres' ? await createTestDatabase({ empty: true }) : undefined;
    serverOptions = { dataDir, httpsPort: ports.https, commsPort: ports.comms, pickupTimeoutSeconds: 5, extraArgs: database ? ['--store', database.url] : [] };
    server = await startServer(serverOptions);
    assert.ok(server.adminKey, 'the first run prints an admin key');
    apiKey = server.adminKey!;
    api = new ApiClient({ server: server.url, apiKey, serverThumbprint: server.thumbprint });

    const listenPort = await freePort();
    // The instances side by side: each CLI process costs a second of start-up, and the
    // tentacle's instance index and config files are locked against concurrent writers.
    await Promise.all([
      setUpInstance('Poll1', ['register-with', '--environment', 'Test', '--role', 'web', '--name', 'poll-1']),
      (async () => {
        await tentacle(['create-instance', '--instance', 'Listen1']);
        await tentacle(['new-certificate', '--instance', 'Listen1']);
        await tentacle(['configure', '--instance', 'Listen1', '--port', String(listenPort), '--listenIpAddress', '127.0.0.1']);
        await tentacle(['register-with', '--instance', 'Listen1', '--server', server.url, '--server-thumbprint', server.thumbprint, '--apiKey', apiKey,
          '--comms-style', 'TentaclePassive', '--publicHostName', '127.0.0.1', '--environment', 'Test', '--role', 'web', '--name', 'listen-1']);
      })(),
      setUpInstance('Worker1', ['register-worker', '--workerpool', 'Builders', '--name', 'worker-1']),
      setUpInstance('Offline1', ['register-with', '--environment', 'Staging', '--role', 'web', '--name', 'offline-1']),
      // For the deleted-machine test, which starts its agent.
      setUpInstance('Doomed', ['register-with', '--environment', 'Condemned', '--role', 'db', '--name', 'doomed-1']),
    ]);
    for (const instance of ['Poll1', 'Listen1', 'Worker1']) agents.set(instance, await startAgent(root, instance));
    await waitFor('the polling tentacles to connect', async () => (await machine('poll-1')).online && (await machine('worker-1')).online);
  });

  after(async () => {
    await stopAll();
    await database?.drop();
  });

  test('a script by environment and role runs on the polling and the listening target, with output and exit codes', async () => {
    const good = await reef(['tasks', 'run-script', '--environment', 'Test', '--role', 'web', '--script', 'echo "out from $(basename $PWD)"; echo "to stderr" >&2; echo done', '--follow']);
    assert.equal(good.code, 0, good.stderr);
    for (const name of ['poll-1', 'listen-1']) {
      assert.match(good.stdout, new RegExp(`\\[${name}\\] out from`));
      assert.match(good.stdout, new RegExp(`\\[${name}\\] ! to stderr`));
      assert.match(good.stdout, new RegExp(`\\[${name}\\] done`));
    }
    const listed = await api.json<{ items: MachineView[] }>('GET', '/api/machines?environment=Test');
    assert.deepEqual(listed.items.map((m) => [m.name, m.commsStyle]).sort(), [['listen-1', 'listening'], ['poll-1', 'polling']]);

    const bad = await reef(['tasks', 'run-script', '--environment', 'Test', '--role', 'web', '--script', 'echo failing; exit 7', '--follow', '--json']);
    assert.notEqual(bad.code, 0, 'a failed task makes the command fail');
    const final = JSON.parse(bad.stdout.trim().split('\n').at(-1)!) as { task?: TaskView } & TaskView;
    const task = final.task ?? final;
    assert.equal(task.state, 'Failed');
    assert.deepEqual(task.machines.map((m) => [m.machineName, m.state, m.exitCode]).sort(), [['listen-1', 'Failed', 7], ['poll-1', 'Failed', 7]]);
  });

  test('a worker pool task runs on one worker', async () => {
    const result = await reef(['tasks', 'run-script', '--worker-pool', 'Builders', '--script', 'echo "worker says hi"', '--follow']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /\[worker-1\] worker says hi/);
  });

  test('a health check reaches a polling and a listening target and records their health and version', async () => {
    const result = await reef(['tasks', 'health-check', '--machine', 'poll-1', '--machine', 'listen-1', '--follow']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /\[poll-1\] .*Healthy: Tentacle \d+\.\d+\.\d+ on linux/);
    for (const name of ['poll-1', 'listen-1']) {
      const m = await machine(name);
      assert.equal(m.lastHealth, 'healthy');
      assert.match(m.tentacleVersion ?? '', /^\d+\.\d+\.\d+/);
    }
  });

  test('a 50 MiB file is pushed and lands with its hash intact', async () => {
    const source = join(await tempDir('payload'), 'payload.bin');
    await writeFile(source, randomBytes(50 * 1024 * 1024));
    const config = JSON.parse(await ok('tentacle', ['show-configuration', '--instance', 'Poll1'], { REEF_TENTACLE_ROOT: root })) as { app?: string; config?: { app: string } };
    const app = config.app ?? config.config!.app;
    const destination = join(app, 'drop', 'payload.bin');
    const result = await reef(['tasks', 'push-file', source, destination, '--machine', 'poll-1', '--follow']);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(existsSync(destination));
    assert.equal(await sha256File(destination), await sha256File(source));
  });

  test('cancelling a long script kills its process and ends Cancelled', async () => {
    const pidFile = join(await tempDir('cancel'), 'pid');
    const taskId = await ok('reef', ['tasks', 'run-script', '--machine', 'poll-1', '--script', `echo $$ > ${pidFile}; echo started; sleep 300`], server.env(apiKey));
    await waitFor('the script to start', async () => (await logText(taskId)).some((l) => l.text === 'started'));
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.equal(processGone(pid), false);
    const cancel = await reef(['tasks', 'cancel', taskId]);
    assert.equal(cancel.code, 0, cancel.stderr);
    const task = await finished(taskId);
    assert.equal(task.state, 'Cancelled');
    assert.equal(task.machines[0]!.state, 'Cancelled');
    await waitFor('the script process to be gone', async () => processGone(pid), 10_000);
  });

  test('a deleted machine loses its connection and is refused when it reconnects', async () => {
    const doomed = await startAgent(root, 'Doomed');
    await waitFor('doomed-1 to connect', async () => (await machine('doomed-1')).online);
    const deleted = await reef(['machines', 'delete', 'doomed-1']);
    assert.equal(deleted.code, 0, deleted.stderr);
    await waitFor('the tentacle to be refused', async () => /does not trust the Tentacle certificate/.test(doomed.log()), 15_000);
    const list = await api.json<{ items: MachineView[] }>('GET', '/api/machines');
    assert.ok(!list.items.some((m) => m.name === 'doomed-1'));
  });

  test('bad input gets clear errors: unknown environment, missing or wrong key, malformed JSON', async () => {
    const unknown = await reef(['tasks', 'run-script', '--environment', 'Nowhere', '--script', 'true']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Environment "Nowhere" does not exist/);

    const noKey = await cli('reef', ['machines', 'list'], { ...server.env(apiKey), REEF_API_KEY: '' });
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /API key/i);

    const wrongKey = await cli('reef', ['machines', 'list'], server.env('API-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'));
    assert.equal(wrongKey.code, 1);
    assert.match(wrongKey.stderr, /key/i);

    const res = await api.request('POST', '/api/tasks', { stream: (await import('node:stream')).Readable.from([Buffer.from('{"kind": "run-script",')]), headers: { 'content-type': 'application/json' } }).catch((err: Error & { code: string }) => err);
    assert.ok(res instanceof Error);
    assert.equal((res as Error & { code: string }).code, 'REEF_BAD_JSON');
    assert.match(res.message, /not valid JSON/);
  });

  test('a task for an offline polling tentacle fails after the pickup timeout, naming it', async () => {
    const result = await reef(['tasks', 'run-script', '--machine', 'offline-1', '--script', 'true', '--follow']);
    assert.equal(result.code, 1);
    const task = await api.json<{ items: TaskView[] }>('GET', '/api/tasks?limit=1');
    const machineState = (await api.json<TaskView>('GET', `/api/tasks/${task.items[0]!.id}`)).machines[0]!;
    assert.equal(machineState.state, 'Failed');
    assert.match(machineState.error!, /Tentacle "offline-1" .* did not connect to collect its work within 5 s; it has never been seen/);
  });

  // Last: the restarted server keeps the long pickup timeout the tentacles' reconnect
  // backoff needs, which the offline-tentacle test above must not wait for.
  test('after kill -9 of the server mid-script, the restarted server collects the whole log and completes the task', async () => {
    const taskId = await ok('reef', ['tasks', 'run-script', '--machine', 'poll-1', '--script', 'for i in $(seq 1 60); do echo "line $i"; sleep 0.1; done'], server.env(apiKey));
    await waitFor('some lines', async () => (await logText(taskId)).length >= 5);
    await server.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1500)); // the script runs on without a server
    // The tentacle's reconnect backoff grows while the server is down (up to 16 s after
    // ~15 s of downtime), so the restart gets a pickup timeout that allows for it.
    server = await startServer({ ...serverOptions, pickupTimeoutSeconds: 60, name: 'server-restarted' });
    assert.equal(server.adminKey, undefined, 'the admin key is printed on the first run only');
    const task = await finished(taskId);
    assert.equal(task.state, 'Success', JSON.stringify(task.machines));
    const lines = (await logText(taskId)).filter((l) => l.stream === 'stdout').map((l) => l.text);
    assert.deepEqual(lines, Array.from({ length: 60 }, (_, i) => `line ${i + 1}`));
  });
});
}

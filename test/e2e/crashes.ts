/**
 * Crashes end to end, with real `reef` and `tentacle` processes (the server part in
 * crashes-server.test.ts, the Tentacle part in crashes-tentacle.test.ts):
 *
 * - kill -9 of the server right after a task was accepted, while a `reef tasks watch`
 *   follows a script's log, and in the middle of a file push: the restarted server (same
 *   data directory and ports) completes the task, and nothing runs twice;
 * - kill -9 of the server between the registrations of a batch: every registration that
 *   was confirmed is in the store, and `register-with --force` works for all of them;
 * - kill -9 of a Tentacle mid-script: its script runs on detached and the restarted
 *   Tentacle hands over the complete log; when the script died with it, the restarted
 *   Tentacle reports it orphaned; when the Tentacle never returns, the server fails the
 *   task at its lost-contact limit (set short here; see that test).
 *
 * The Tentacle polls through a fault forwarder so the file push can be slowed down enough
 * (by latency against HTTP/2 flow control) to kill the server in the middle of it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import type { LogPage, MachineView, TaskView } from '../../src/api/contract.js';
import { startForwarder, type Forwarder } from '../support/forwarder.js';
import { REEF_BIN } from '../support/built.js';
import { spawnTracked } from '../support/processes.js';
import { cli, freePort, ok, startAgent, startServer, stop, stopAll, tempDir, waitFor, type AgentProcess, type CliResult, type ServerProcess, processGone, sha256File } from './harness.js';

const MACHINE = 'crash-1';
const PICKUP_SECONDS = 15;
/** The server's lost-contact limit here (--lost-contact-limit; the default is 30 minutes). */
const LOST_CONTACT_MS = 15_000;

/** The process group of a live process (/proc/<pid>/stat: state, ppid, pgrp after the name). */
function processGroup(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[2]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const linesOf = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
const numbered = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}`);

/**
 * The crash tests of one part, each part in a test file of its own (crashes-server.test.ts,
 * crashes-tentacle.test.ts) so both run side by side and neither nears its timeout; each
 * part starts its own server and Tentacle.
 */
export function crashTests(part: 'server' | 'tentacle'): void {
  describe(`Reef after kill -9 of the ${part}`, () => {
    /** A test of this part; the other part's tests are not defined here at all. */
    const of = (which: 'server' | 'tentacle') => (which === part ? test : ((() => undefined) as unknown as typeof test));
    let server: ServerProcess;
    let serverOptions: Parameters<typeof startServer>[0];
    let forwarder: Forwarder;
    let agent: AgentProcess;
    let root: string;
    let apiKey: string;
    let api: ApiClient;
    let scratch: string;
    let restarts = 0;

    const tentacle = (args: string[]) => ok('tentacle', args, { REEF_TENTACLE_ROOT: root });
    const registerArgs = (instance: string, name: string) => [
      'register-with', '--instance', instance, '--server', server.url, '--server-thumbprint', server.thumbprint, '--apiKey', apiKey,
      '--server-comms-port', String(server.commsPort), '--environment', 'Crash', '--role', 'batch', '--name', name,
    ];

    async function machine(name = MACHINE): Promise<MachineView> {
      return api.json<MachineView>('GET', `/api/machines/${encodeURIComponent(name)}`);
    }

    async function task(taskId: string): Promise<TaskView> {
      return api.json<TaskView>('GET', `/api/tasks/${taskId}`);
    }

    async function finished(taskId: string, timeoutMs = 60_000): Promise<TaskView> {
      return waitFor(`task ${taskId} to finish`, async () => {
        const view = await task(taskId);
        return ['Success', 'Failed', 'Cancelled', 'TimedOut'].includes(view.state) ? view : undefined;
      }, timeoutMs);
    }

    async function logOf(taskId: string): Promise<LogPage['items']> {
      return (await api.json<LogPage>('GET', `/api/tasks/${taskId}/log?after=0&limit=10000`)).items;
    }

    async function runScript(body: string): Promise<string> {
      return ok('reef', ['tasks', 'run-script', '--machine', MACHINE, '--script', body], server.env(apiKey));
    }

    /** kill -9, then the same command line again: same data directory, same ports. */
    async function crashServer(): Promise<void> {
      await server.kill('SIGKILL');
    }

    async function restartServer(): Promise<number> {
      const started = Date.now();
      server = await startServer({ ...serverOptions, name: `crash-server-restart-${++restarts}` });
      api = new ApiClient({ server: server.url, apiKey, serverThumbprint: server.thumbprint });
      return Date.now() - started;
    }

    before(async () => {
      scratch = await tempDir('crash-scratch');
      root = await tempDir('crash-tentacles');
      serverOptions = { dataDir: await tempDir('crash-server'), httpsPort: await freePort(), commsPort: await freePort(), pickupTimeoutSeconds: PICKUP_SECONDS, name: 'crash-server', extraArgs: ['--lost-contact-limit', String(LOST_CONTACT_MS / 1000)] };
      server = await startServer(serverOptions);
      apiKey = server.adminKey!;
      api = new ApiClient({ server: server.url, apiKey, serverThumbprint: server.thumbprint });
      // The forwarder outlives server restarts: it dials the fixed comms port for each connection.
      forwarder = await startForwarder({ targetPort: server.commsPort });

      await tentacle(['create-instance', '--instance', 'Crash']);
      await tentacle(['new-certificate', '--instance', 'Crash']);
      const args = registerArgs('Crash', MACHINE);
      args[args.indexOf('--server-comms-port') + 1] = String(forwarder.port);
      await tentacle(args);
      agent = await startAgent(root, 'Crash');
      await waitFor('the tentacle to connect', async () => (await machine()).online);
    });

    after(async () => {
      await forwarder?.close();
      await stopAll();
    });

    of('server')('kill -9 right after POST /api/tasks returned: after the restart the task completes, its script ran once', async (t) => {
      const marker = join(scratch, 'start.marker');
      const accepted = await api.json<TaskView>('POST', '/api/tasks', {
        body: { kind: 'run-script', target: { machines: [MACHINE] }, script: { syntax: 'bash', body: `echo ran >> ${marker}; echo started once` } },
      });
      server.child.kill('SIGKILL'); // no await between the answer and the kill
      await crashServer();
      t.diagnostic(`the script had ${existsSync(marker) ? 'already' : 'not yet'} run when the server died`);
      t.diagnostic(`server restarted in ${await restartServer()} ms`);
      const done = await finished(accepted.id);
      assert.equal(done.state, 'Success', JSON.stringify(done.machines));
      assert.deepEqual(linesOf(marker), ['ran']);
      assert.deepEqual((await logOf(accepted.id)).filter((l) => l.stream === 'stdout').map((l) => l.text), ['started once']);
    });

    of('server')('kill -9 while `reef tasks watch` follows the log: the watcher rides it out and prints every line once; the script ran once', async (t) => {
      const marker = join(scratch, 'watch.marker');
      const taskId = await runScript(`echo ran >> ${marker}; for i in $(seq 1 40); do echo "line $i"; sleep 0.25; done`);
      const watcher = spawnTracked(process.execPath, [REEF_BIN, 'tasks', 'watch', taskId], { env: { ...process.env, ...server.env(apiKey), REEF_LOG_LEVEL: 'warn' } });
      let watched = '';
      let notes = '';
      watcher.stdout!.setEncoding('utf8').on('data', (d: string) => (watched += d));
      watcher.stderr!.setEncoding('utf8').on('data', (d: string) => (notes += d));
      const exited = once(watcher, 'exit');
      try {
        await waitFor('the watcher to print some lines', async () => /\] line 5\n/.test(watched), 30_000);
        await crashServer();
        await sleep(1000); // the script runs on; the watcher sees the stream break
        t.diagnostic(`server restarted in ${await restartServer()} ms`);
        const [code] = await Promise.race([exited, sleep(60_000).then(() => ['timeout'])]);
        assert.equal(code, 0, `watch exited ${code}\nstdout:\n${watched}\nstderr:\n${notes}`);
      } finally {
        await stop(watcher, 'SIGKILL');
      }
      const printed = watched.split('\n').filter((l) => l.startsWith(`[${MACHINE}] line `)).map((l) => l.slice(`[${MACHINE}] `.length));
      assert.deepEqual(printed, numbered(40), 'the watcher printed every line once, in order');
      assert.match(notes, /Log stream interrupted/, 'the watcher noticed the server going away');
      const done = await task(taskId);
      assert.equal(done.state, 'Success');
      assert.deepEqual((await logOf(taskId)).filter((l) => l.stream === 'stdout').map((l) => l.text), numbered(40));
      assert.deepEqual(linesOf(marker), ['ran']);
    });

    of('server')('kill -9 in the middle of a file push: after the restart the upload resumes from its offset and the hash matches', async (t) => {
      const size = 30 * 1024 * 1024;
      const source = join(scratch, 'push.bin');
      await writeFile(source, randomBytes(size));
      const config = JSON.parse(await tentacle(['show-configuration', '--instance', 'Crash'])) as { app?: string; config?: { app: string } };
      const destination = join(config.app ?? config.config!.app, 'drop', 'crash.bin');
      const partial = `${destination}.reef-partial`;

      // 100 ms each way against a 1 MiB HTTP/2 stream window: a few MiB/s, so the push takes seconds.
      forwarder.setDelay(100);
      let taskId: string;
      try {
        taskId = await ok('reef', ['tasks', 'push-file', source, destination, '--machine', MACHINE], server.env(apiKey));
        await waitFor('the upload to be under way', async () => existsSync(partial) && statSync(partial).size >= 4 * 1024 * 1024, 30_000);
        await crashServer();
        t.diagnostic(`killed the server with ${statSync(partial).size} of ${size} bytes on the tentacle`);
      } finally {
        forwarder.setDelay(0);
      }
      t.diagnostic(`server restarted in ${await restartServer()} ms`);
      const done = await finished(taskId);
      assert.equal(done.state, 'Success', JSON.stringify(done.machines));
      const texts = (await logOf(taskId)).map((l) => l.text);
      const resumed = texts.map((text) => /Resuming the upload of .* at byte (\d+) of (\d+)\./.exec(text)).find((m) => m);
      assert.ok(resumed, `a resume line in:\n${texts.join('\n')}`);
      t.diagnostic(`resumed at byte ${resumed[1]}`);
      assert.ok(Number(resumed[1]) > 0 && Number(resumed[1]) < size, `resumed at byte ${resumed[1]} of ${size}`);
      assert.equal(await sha256File(destination), await sha256File(source));
      assert.equal(existsSync(partial), false, 'no partial left behind');
    });

    of('server')('kill -9 between the registrations of a batch: every confirmed registration is stored, and --force re-registers all', async (t) => {
      const batch = ['Batch1', 'Batch2', 'Batch3', 'Batch4', 'Batch5'];
      const thumbprints = new Map<string, string>();
      await Promise.all(batch.map(async (instance) => {
        await tentacle(['create-instance', '--instance', instance]);
        thumbprints.set(instance, await tentacle(['new-certificate', '--instance', instance]));
      }));
      const nameOf = (instance: string) => `batch-${instance.slice(-1)}`;

      // One after another; the server dies after the second one was confirmed.
      const results = new Map<string, CliResult>();
      for (const [i, instance] of batch.entries()) {
        results.set(instance, await cli('tentacle', registerArgs(instance, nameOf(instance)), { REEF_TENTACLE_ROOT: root }));
        if (i === 1) await crashServer();
      }
      const confirmed = batch.filter((instance) => results.get(instance)!.code === 0);
      t.diagnostic(`confirmed before the crash: ${confirmed.join(', ')}`);
      assert.deepEqual(confirmed, ['Batch1', 'Batch2']);
      for (const instance of batch.slice(2)) {
        assert.match(results.get(instance)!.stderr, /Could not connect to 127\.0\.0\.1:\d+: ECONNREFUSED/, 'a failed registration says it could not reach the server');
      }

      await restartServer();
      const listed = (await api.json<{ items: MachineView[] }>('GET', '/api/machines')).items;
      for (const instance of confirmed) {
        const found = listed.filter((m) => m.name === nameOf(instance));
        assert.equal(found.length, 1, `${nameOf(instance)} is stored once`);
        assert.equal(found[0]!.thumbprint, thumbprints.get(instance));
      }
      const names = listed.map((m) => m.name);
      assert.equal(new Set(names).size, names.length, 'no name stored twice');

      for (const instance of batch) {
        const again = await cli('tentacle', [...registerArgs(instance, nameOf(instance)), '--force'], { REEF_TENTACLE_ROOT: root });
        assert.equal(again.code, 0, `${instance}: ${again.stderr}`);
      }
      const stored = (await api.json<{ items: MachineView[] }>('GET', '/api/machines')).items;
      for (const instance of batch) {
        const found = stored.filter((m) => m.name === nameOf(instance));
        assert.equal(found.length, 1, `${nameOf(instance)} is stored once`);
        assert.equal(found[0]!.thumbprint, thumbprints.get(instance));
      }
      assert.equal(stored.length, batch.length + 1, 'the batch and crash-1, nothing else');
      // A registration made after the crash is usable: its tentacle connects and is trusted.
      const late = await startAgent(root, 'Batch3');
      try {
        await waitFor('batch-3 to connect', async () => (await machine('batch-3')).online, 30_000);
      } finally {
        await stop(late.child);
      }
      await waitFor('crash-1 to be back', async () => (await machine()).online);
    });

    /** Starts a 40-line script that records its pid, and waits for its first lines. */
    async function startCountingScript(name: string): Promise<{ taskId: string; marker: string; pid: number }> {
      const marker = join(scratch, `${name}.marker`);
      const pidFile = join(scratch, `${name}.pid`);
      const taskId = await runScript(`echo ran >> ${marker}; echo $$ > ${pidFile}; for i in $(seq 1 40); do echo "line $i"; sleep 0.25; done`);
      await waitFor('the first lines', async () => (await logOf(taskId)).filter((l) => l.stream === 'stdout').length >= 5, 30_000);
      return { taskId, marker, pid: Number(readFileSync(pidFile, 'utf8')) };
    }

    of('tentacle')('kill -9 of the tentacle mid-script: the script runs on detached and the restarted tentacle hands over the whole log', async (t) => {
      const { taskId, marker, pid } = await startCountingScript('survivor');
      await stop(agent.child, 'SIGKILL');
      const killedAt = Date.now();
      await sleep(1500);
      assert.equal(processGone(pid), false, 'the script outlived its tentacle');
      assert.equal((await machine()).online, false);
      assert.equal((await task(taskId)).state, 'Running', 'the server waits for the tentacle to come back');
      agent = await startAgent(root, 'Crash');
      const restartedAt = Date.now();
      const done = await finished(taskId);
      t.diagnostic(`task ended ${done.state} ${Date.now() - killedAt} ms after the kill, ${Date.now() - restartedAt} ms after the tentacle restarted`);
      assert.equal(done.state, 'Success', JSON.stringify(done.machines));
      assert.deepEqual((await logOf(taskId)).filter((l) => l.stream === 'stdout').map((l) => l.text), numbered(40));
      assert.deepEqual(linesOf(marker), ['ran']);
    });

    of('tentacle')('kill -9 of the tentacle and its script (a machine crash): the restarted tentacle reports the script orphaned and the task fails saying so', async (t) => {
      const { taskId, marker, pid } = await startCountingScript('orphan');
      const group = processGroup(pid);
      await stop(agent.child, 'SIGKILL');
      process.kill(-group, 'SIGKILL'); // the wrapper, the script and its sleep
      await waitFor('the script to be gone', async () => processGone(pid), 10_000);
      agent = await startAgent(root, 'Crash');
      const restartedAt = Date.now();
      const done = await finished(taskId);
      t.diagnostic(`task ended ${done.state} ${Date.now() - restartedAt} ms after the tentacle restarted`);
      assert.equal(done.state, 'Failed');
      const m = done.machines[0]!;
      assert.equal(m.state, 'Failed');
      assert.equal(m.exitCode, null);
      assert.match(m.error ?? '', /The Tentacle restarted while the script was running and its process is gone/);
      const log = await logOf(taskId);
      // The tentacle's own account, as a Reef line in the log, after the script's last output.
      const why = log.findIndex((l) => /The Tentacle restarted while this script was running; its process is gone and its exit code is unknown/.test(l.text));
      assert.ok(why >= 0, log.map((l) => `${l.stream}: ${l.text}`).join('\n'));
      assert.equal(log[why]!.stream, 'info');
      assert.ok(log.slice(why + 1).every((l) => l.stream !== 'stdout'), 'no output after the orphan notice');
      const stdout = log.filter((l) => l.stream === 'stdout').map((l) => l.text);
      assert.ok(stdout.length >= 5 && stdout.length < 40, `${stdout.length} lines before the crash`);
      assert.deepEqual(stdout, numbered(stdout.length), 'what the script wrote before it died, once and in order');
      assert.deepEqual(linesOf(marker), ['ran'], 'not started again');
      assert.match(agent.log(), /adopting a script started before this Tentacle process/);
    });

    of('tentacle')('kill -9 of the tentacle for good: the task fails at the lost-contact limit, naming the tentacle', async (t) => {
      const { taskId, pid } = await startCountingScript('abandoned');
      await stop(agent.child, 'SIGKILL');
      const killedAt = Date.now();
      await waitFor('the server to see the link gone', async () => !(await machine()).online, 5000);
      const noticedMs = Date.now() - killedAt;
      const done = await finished(taskId, LOST_CONTACT_MS + 30_000);
      const decidedMs = Date.now() - killedAt;
      t.diagnostic(`link gone after ${noticedMs} ms; task ${done.state} after ${decidedMs} ms (lost-contact limit ${LOST_CONTACT_MS / 1000} s)`);
      assert.equal(done.state, 'Failed');
      assert.match(done.machines[0]!.error ?? '', new RegExp(`Lost contact with Tentacle "${MACHINE}" at .* while its script was running, and it did not come back within ${LOST_CONTACT_MS / 1000} s`));
      // Not before the limit, and not much after it.
      assert.ok(decidedMs >= LOST_CONTACT_MS - 1000 && decidedMs < LOST_CONTACT_MS + 10_000, `decided after ${decidedMs} ms`);
      await waitFor('the detached script to end by itself', async () => processGone(pid), 10_000);
    });

    test('after all of the above, no task is left Queued or Running', async () => {
      const tasks = (await api.json<{ items: TaskView[] }>('GET', '/api/tasks?limit=100')).items;
      assert.ok(tasks.length >= 3, `${tasks.length} tasks`);
      assert.deepEqual(tasks.filter((view) => view.state === 'Queued' || view.state === 'Running').map((view) => view.id), []);
      for (const view of tasks.filter((v) => v.state !== 'Success')) assert.ok(view.machines.every((m) => m.error), `${view.id} says why it failed`);
    });
  });
}

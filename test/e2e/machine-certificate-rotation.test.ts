/**
 * Tentacle certificate rotation end to end, with a real `reef server run` and a real polling
 * `tentacle agent` killed (SIGKILL) between the two steps: after the server recorded its
 * next certificate, before the Tentacle could switch to it. The Tentacle polls through a
 * proxy that holds what the server sends from the moment the next certificate is on disk,
 * so the switch never reaches it. The first run fails (the Tentacle stays away longer than
 * the pickup timeout); restarted, the Tentacle connects with one of its two certificates,
 * and a re-run finishes the rotation with the same next certificate (asking again answers
 * the pending one: no third is made).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { watch } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { MachineView, TaskView } from '../../src/api/contract.js';
import { loadIdentity } from '../../src/pki/identity-files.js';
import { cli, freePort, ok, startAgent, startServer, stopAll, tempDir, waitFor, type AgentProcess, type ServerProcess } from './harness.js';

/** A TCP proxy whose server-to-Tentacle direction can be held on live connections (the other flows on). */
async function startHoldingProxy(targetPort: number) {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  return {
    port: (proxy.address() as net.AddressInfo).port,
    holdDownstream() {
      for (const { client, upstream } of pairs) {
        upstream.unpipe(client);
        upstream.pause();
      }
    },
    dropAll() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
    },
    close: () => new Promise((resolve) => proxy.close(resolve)),
  };
}

describe('Tentacle certificate rotation', () => {
  let server: ServerProcess;
  let proxy: Awaited<ReturnType<typeof startHoldingProxy>>;
  let root: string;
  let adminKey: string;
  const tentacle = (args: string[]) => ok('tentacle', args, { REEF_TENTACLE_ROOT: root });
  const reef = (args: string[]) => cli('reef', args, server.env(adminKey));
  const machine = async (): Promise<MachineView> => {
    const result = await reef(['machines', 'show', 'tc-1', '--json']);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as MachineView;
  };
  const thumbprintOnDisk = async () => (await tentacle(['show-thumbprint', '--instance', 'Tc1'])).trim();

  before(async () => {
    let dataDir: string;
    let httpsPort: number;
    let commsPort: number;
    [dataDir, root, httpsPort, commsPort] = await Promise.all([tempDir('tcert-server'), tempDir('tcert-tentacles'), freePort(), freePort()]);
    server = await startServer({ dataDir, httpsPort, commsPort, name: 'tcert-server', pickupTimeoutSeconds: 3 });
    adminKey = server.adminKey!;
    proxy = await startHoldingProxy(commsPort);
    await tentacle(['create-instance', '--instance', 'Tc1']);
    await tentacle(['new-certificate', '--instance', 'Tc1']);
    await tentacle(['register-with', '--instance', 'Tc1', '--server', server.url, '--server-thumbprint', server.thumbprint, '--apiKey', adminKey,
      '--server-comms-port', String(proxy.port), '--environment', 'Test', '--role', 'web', '--name', 'tc-1']);
  });

  after(async () => {
    await stopAll();
    await proxy?.close();
  });

  test('killed between making its next certificate and switching, the Tentacle comes back on one of the two, and a re-run finishes', async () => {
    const home = JSON.parse(await tentacle(['show-configuration', '--instance', 'Tc1'])).home as string;
    const old = await thumbprintOnDisk();
    let agent: AgentProcess = await startAgent(root, 'Tc1');
    await waitFor('tc-1 to connect', async () => (await machine()).online);

    // The moment the next certificate is complete on disk (its certificate file is written
    // after its key), before the Tentacle answers: hold everything the server sends it from
    // now on (the Tentacle is stopped meanwhile, so its answer cannot overtake the hold).
    const held = new Promise<void>((resolve) => {
      const watcher = watch(home, (_event, file) => {
        if (file !== 'comms-next.cert.pem') return;
        agent.child.kill('SIGSTOP');
        proxy.holdDownstream();
        agent.child.kill('SIGCONT');
        watcher.close();
        resolve();
      });
    });
    const first = await reef(['machines', 'rotate-certificate', '--machine', 'tc-1', '--json']);
    assert.equal(first.code, 0, first.stderr);
    const firstTask = JSON.parse(first.stdout) as TaskView;
    await held;
    const pending = (await loadIdentity(home, 'comms-next')).thumbprint;
    assert.notEqual(pending, old);
    // Step 2 done: the server recorded it. The switch it sent is held: SIGKILL now.
    await waitFor('the server to record the next thumbprint', async () => (await machine()).nextThumbprint === pending);
    agent.child.kill('SIGKILL');
    proxy.dropAll();
    const failed = await waitFor('the first run to end', async () => {
      const task = JSON.parse((await reef(['tasks', 'show', firstTask.id, '--json'])).stdout) as TaskView;
      return ['Success', 'Failed'].includes(task.state) && task;
    }, 60_000);
    assert.equal(failed.state, 'Failed', 'the Tentacle stayed away longer than the pickup timeout');
    assert.equal(await thumbprintOnDisk(), old, 'killed before the switch: the old certificate is still current');
    assert.match(failed.machines[0]!.error ?? '', /did not connect with it within 3 s/);
    assert.equal((await machine()).nextThumbprint, pending, 'still pending: either is accepted');

    // Restarted, it connects with one of the two (the server accepts either until it sees the new one).
    agent = await startAgent(root, 'Tc1');
    await waitFor('tc-1 to connect again', async () => (await machine()).online);
    assert.ok([old, pending].includes(await thumbprintOnDisk()));
    assert.equal((await machine()).thumbprint, old);

    const rerun = await reef(['machines', 'rotate-certificate', '--machine', 'tc-1', '--follow']);
    assert.equal(rerun.code, 0, `${rerun.stdout}\n${rerun.stderr}`);
    assert.match(rerun.stdout, /Done: the machine's certificate is now/);
    assert.equal(await thumbprintOnDisk(), pending, 'the same next certificate: asking again made no third');
    const after = await machine();
    assert.deepEqual([after.thumbprint, after.nextThumbprint], [pending, null]);
    assert.match(rerun.stdout, /Finishing the rotation an earlier run left pending/);
    await waitFor('tc-1 to be connected on its new certificate', async () => (await machine()).online);
    assert.ok(agent.child.exitCode === null, 'the agent runs on');
    assert.match(agent.log(), /switched to the new Tentacle certificate/);

    const audit = await reef(['audit', '--kind', 'machine.certificate-rotated', '--json']);
    assert.equal(audit.code, 0, audit.stderr);
    assert.match(audit.stdout, new RegExp(old));
  });
});

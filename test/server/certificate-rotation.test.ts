/**
 * A whole server certificate rotation in-process (the quick version of
 * test/e2e/certificate-rotation.slow.test.ts): a real server and two in-process agents
 * with config files. Grace 0, so nothing waits on a timer.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CertificateRotationView } from '../../src/api/contract.js';
import { startRotationBench, trustOf, until, type RotationBench } from './certificate-rotation-harness.js';

let bench: RotationBench;
before(async () => {
  bench = await startRotationBench();
});
after(() => bench?.close());

test('the online Tentacle ends on the new certificate with the old dropped; the offline one gets in afterwards and does the same', async () => {
  const { server } = bench;
  const online = await bench.tentacle('online-1');
  const offline = await bench.tentacle('offline-1');
  const onlineAgent = await online.start();
  await until('online-1 to connect', async () => [...onlineAgent.pollers.values()][0]!.connected);
  const old = server.info.commsThumbprint;

  const started = await bench.api().json<CertificateRotationView>('POST', '/api/server/certificate-rotation', { body: { graceSeconds: 0 } });
  const next = started.newThumbprint;
  await until('online-1 to trust the new thumbprint', async () => (await trustOf(online.configPath)).includes(next));
  const status = await bench.api().json<CertificateRotationView>('GET', '/api/server/certificate-rotation');
  assert.deepEqual([status.machines, status.trusting], [2, 1]);
  assert.deepEqual(status.notTrusting.map((m) => m.name), ['offline-1']);
  assert.equal(server.info.commsThumbprint, old, 'still the old certificate until completion');

  const both = bench.api(`${old},${next}`);
  await both.json('POST', '/api/server/certificate-rotation/complete');
  assert.equal(server.info.commsThumbprint, next);
  await until('online-1 to drop the old thumbprint', async () => JSON.stringify(await trustOf(online.configPath)) === JSON.stringify([next]));
  await until('online-1 to be connected again', async () => server.comms.links.size === 1 && server.comms.links.all()[0]!.peer.presented === next);

  await offline.start();
  await until('offline-1 to trust only the new thumbprint', async () => JSON.stringify(await trustOf(offline.configPath)) === JSON.stringify([next]));
  await until('both on the new certificate', async () => server.comms.links.all().length === 2 && server.comms.links.all().every((c) => c.peer.presented === next));
  // The Tentacle writes its config before the server records the confirmation it answers.
  const final = await until('the server to record both drops', async () => {
    const view = await both.json<CertificateRotationView>('GET', '/api/server/certificate-rotation');
    return view.dropped === 2 && view;
  });
  assert.deepEqual([final.trusting, final.dropped, final.notTrusting.length], [2, 2, 0]);

  // Every step is in the audit log: who started and completed it, and each Tentacle's confirmations.
  const kinds = async (filter: string) => (await both.json<{ items: { kind: string; actor: { kind: string }; target: { name: string } | null }[] }>('GET', `/api/audit?kind=${filter}`)).items;
  assert.deepEqual((await kinds('server')).map((e) => [e.kind, e.actor.kind]).filter(([k]) => k!.startsWith('server.certificate')).reverse(), [
    ['server.certificate-rotation-started', 'api-key'],
    ['server.certificate-rotation-completed', 'api-key'],
  ]);
  const machines = await kinds('machine');
  for (const kind of ['machine.server-certificate-trusted', 'machine.server-certificate-dropped']) {
    assert.deepEqual(machines.filter((e) => e.kind === kind).map((e) => e.target!.name).sort(), ['offline-1', 'online-1'], kind);
  }
});

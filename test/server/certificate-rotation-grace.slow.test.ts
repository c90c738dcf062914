/**
 * The grace period of a server certificate rotation: after completion the Tentacle keeps
 * the old thumbprint until the grace period has passed, then the server's sweep (not a
 * new connection) tells it to drop it. A 2 s grace and a 200 ms sweep.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CertificateRotationView } from '../../src/api/contract.js';
import { startRotationBench, trustOf, until, type RotationBench } from './certificate-rotation-harness.js';

let bench: RotationBench;
before(async () => {
  bench = await startRotationBench({ certificateRotationSweepMs: 200 });
});
after(() => bench?.close());

test('the old thumbprint is dropped only once the grace period has passed, by the sweep', async () => {
  const web = await bench.tentacle('web-1');
  const agent = await web.start();
  await until('web-1 to connect', async () => [...agent.pollers.values()][0]!.connected);
  const old = bench.server.info.commsThumbprint;
  const started = await bench.api().json<CertificateRotationView>('POST', '/api/server/certificate-rotation', { body: { graceSeconds: 2 } });
  const next = started.newThumbprint;
  await until('web-1 to trust the new thumbprint', async () => (await trustOf(web.configPath)).includes(next));

  const completed = await bench.api(`${old},${next}`).json<CertificateRotationView>('POST', '/api/server/certificate-rotation/complete');
  const dropAt = Date.parse(completed.dropOldAfter!);
  assert.equal(dropAt, Date.parse(completed.completedAt!) + 2000);
  // Moved to the new certificate at once (its link on the old one is closed), the old thumbprint still trusted.
  await until('web-1 on the new certificate', async () => bench.server.comms.links.all()[0]?.peer.presented === next);
  assert.ok(Date.now() < dropAt, 'checked before the grace period ends');
  assert.deepEqual(await trustOf(web.configPath), [old, next]);

  await until('web-1 to drop the old thumbprint', async () => (await trustOf(web.configPath)).length === 1, 10_000);
  assert.ok(Date.now() >= dropAt, 'not before the grace period ended');
  assert.deepEqual(await trustOf(web.configPath), [next]);
});

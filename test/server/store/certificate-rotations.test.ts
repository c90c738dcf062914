import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CertificateRotationInsert, Store } from '../../../src/server/store/types.js';
import { forEachStore, target, thumbprint, type TempStore } from './helpers.js';

function rotation(): CertificateRotationInsert {
  const cert = (tp: string) => ({ thumbprint: tp, certPem: `CERT ${tp}`, keyPem: `KEY ${tp}` });
  return { old: cert(thumbprint()), next: cert(thumbprint()), graceMs: 90_000, startedBy: 'user "admin"' };
}

forEachStore((kind, open) => {
  describe(`${kind} store: server certificate rotations`, () => {
    let t: TempStore;
    let store: Store;
    before(async () => {
      t = await open();
      store = t.store;
    });
    after(() => t.cleanup());

    it('keeps one rotation under way at a time, completes it once, and records who trusts and dropped', async () => {
      assert.equal(await store.latestCertificateRotation(), null);
      const first = await store.insertCertificateRotation(rotation());
      assert.match(first.id, /^rot-[a-z2-7]{12}$/);
      assert.equal(first.graceMs, 90_000);
      assert.equal(first.completedAt, null);
      assert.deepEqual(await store.latestCertificateRotation(), first);
      await assert.rejects(store.insertCertificateRotation(rotation()), (err: Error & { code?: string }) => err.code === 'REEF_ROTATION_IN_PROGRESS');

      const web = await store.createMachine(target('rot-web-1'));
      const db = await store.createMachine(target('rot-db-1'));
      await store.recordCertificateTrust(first.id, web.id, 'trusted');
      await store.recordCertificateTrust(first.id, web.id, 'trusted'); // a repeat changes nothing
      await store.recordCertificateTrust(first.id, db.id, 'dropped'); // nothing to mark before trust
      let trust = await store.listCertificateTrust(first.id);
      assert.deepEqual(trust.map((x) => [x.machineId, x.droppedAt]), [[web.id, null]]);

      const completed = (await store.completeCertificateRotation(first.id))!;
      assert.ok(completed.completedAt);
      assert.equal(await store.completeCertificateRotation(first.id), null, 'completed once only');
      await store.recordCertificateTrust(first.id, web.id, 'dropped');
      trust = await store.listCertificateTrust(first.id);
      assert.ok(trust[0]!.droppedAt);

      // The next rotation may start now, and is the latest.
      const second = await store.insertCertificateRotation(rotation());
      assert.equal((await store.latestCertificateRotation())!.id, second.id);
      assert.deepEqual(await store.listCertificateTrust(second.id), []);
      // A deleted machine takes its trust rows with it.
      await store.deleteMachine(web.id);
      assert.deepEqual(await store.listCertificateTrust(first.id), []);
    });
  });
});

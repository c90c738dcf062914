import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Store } from '../../../src/server/store/types.js';
import { forEachStore, target, thumbprint, type TempStore } from './helpers.js';

const code = (expected: string) => (err: Error & { code?: string }) => err.code === expected;

forEachStore((kind, open) => {
  describe(`${kind} store: Tentacle certificate rotation (next thumbprints)`, () => {
    let t: TempStore;
    let store: Store;
    before(async () => {
      t = await open();
      store = t.store;
    });
    after(() => t.cleanup());

    it('records a next thumbprint once, finds the machine by it, and promotes it once', async () => {
      const web = await store.createMachine(target('tcert-web-1'));
      assert.equal(web.nextThumbprint, null);
      const next = thumbprint();
      const recorded = await store.setNextThumbprint(web.id, next.toLowerCase());
      assert.equal(recorded.nextThumbprint, next, 'stored normalised');
      assert.equal(recorded.thumbprint, web.thumbprint, 'the current one is unchanged');
      assert.equal((await store.setNextThumbprint(web.id, next)).nextThumbprint, next, 'the same one again changes nothing');
      assert.equal((await store.getMachineByNextThumbprint(next))?.id, web.id);
      assert.equal(await store.getMachineByNextThumbprint(web.thumbprint), null, 'a current thumbprint is not a next one');
      assert.equal(await store.getMachineByThumbprint(next), null, 'not current before the promotion');

      assert.equal(await store.promoteNextThumbprint(web.id, thumbprint()), null, 'another thumbprint is not promoted');
      const promoted = (await store.promoteNextThumbprint(web.id, next))!;
      assert.equal(promoted.previous, web.thumbprint);
      assert.equal(promoted.machine.thumbprint, next);
      assert.equal(promoted.machine.nextThumbprint, null);
      assert.equal(await store.promoteNextThumbprint(web.id, next), null, 'promoted once only');
      assert.equal(await store.getMachineByThumbprint(web.thumbprint), null, 'the old thumbprint is no machine’s any more');
      assert.equal((await store.getMachineByThumbprint(next))?.id, web.id);
    });

    it('refuses as next a thumbprint that is another machine’s, current or pending', async () => {
      const a = await store.createMachine(target('tcert-a'));
      const b = await store.createMachine(target('tcert-b'));
      await assert.rejects(store.setNextThumbprint(a.id, b.thumbprint), code('REEF_THUMBPRINT_TAKEN'));
      await assert.rejects(store.setNextThumbprint(a.id, a.thumbprint), code('REEF_THUMBPRINT_TAKEN'), 'nor its own current one');
      const pending = thumbprint();
      await store.setNextThumbprint(b.id, pending);
      await assert.rejects(store.setNextThumbprint(a.id, pending), code('REEF_THUMBPRINT_TAKEN'));
      assert.equal((await store.getMachine(a.id))!.nextThumbprint, null);
      await assert.rejects(store.setNextThumbprint('m-nosuchmachine', thumbprint()), code('REEF_NOT_FOUND'));
      // A machine may replace its own pending thumbprint (a Tentacle whose files were restored).
      const other = thumbprint();
      assert.equal((await store.setNextThumbprint(b.id, other)).nextThumbprint, other);
      assert.equal(await store.getMachineByNextThumbprint(pending), null);
    });

    it('refuses to register a pending thumbprint as another machine, and a registration with a new certificate ends the rotation', async () => {
      const c = await store.createMachine(target('tcert-c'));
      const pending = thumbprint();
      await store.setNextThumbprint(c.id, pending);
      await assert.rejects(store.createMachine(target('tcert-d', { thumbprint: pending })), code('REEF_CONFLICT'));
      await assert.rejects(store.upsertMachine(target('tcert-d', { thumbprint: pending })), code('REEF_CONFLICT'));
      // Its own machine may be registered again with it (tentacle register-with --force after a switch).
      const replaced = await store.upsertMachine(target('tcert-c', { thumbprint: pending }));
      assert.deepEqual([replaced.machine.thumbprint, replaced.machine.nextThumbprint], [pending, null]);
      // A new certificate by hand clears a pending one.
      await store.setNextThumbprint(c.id, thumbprint());
      const byHand = thumbprint();
      assert.equal((await store.upsertMachine(target('tcert-c', { thumbprint: byHand }))).machine.nextThumbprint, null);
    });
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Store } from '../../../src/server/store/types.js';
import { forEachStore, target, thumbprint, worker, type TempStore } from './helpers.js';

forEachStore((kind, open) => {
  describe(`${kind} store: environments and worker pools`, () => {
    let t: TempStore;
    let store: Store;
    before(async () => {
      t = await open();
      store = t.store;
    });
    after(() => t.cleanup());

    it('ensureEnvironment creates once and matches names case-insensitively', async () => {
      const a = await store.ensureEnvironment('Production');
      const b = await store.ensureEnvironment('  PRODUCTION ');
      assert.equal(b.id, a.id);
      assert.equal(b.name, 'Production', 'keeps the first spelling');
      assert.match(a.id, /^env-[a-z2-7]{12}$/);
      assert.deepEqual(await store.getEnvironment('production'), a);
      assert.deepEqual(await store.getEnvironment(a.id), a);
      assert.equal(await store.getEnvironment('nope'), null);
      await assert.rejects(store.ensureEnvironment('   '), { code: 'REEF_INVALID_ARGUMENT' });
    });

    it('lists sorted and deletes unused ones; refuses while machines use them', async () => {
      await store.ensureEnvironment('alpha');
      await store.ensureEnvironment('Zulu');
      const names = (await store.listEnvironments()).map((e) => e.name);
      assert.deepEqual(names, [...names].sort((x, y) => x.toLowerCase().localeCompare(y.toLowerCase())));
      assert.equal(await store.deleteEnvironment('ZULU'), true);
      assert.equal(await store.deleteEnvironment('Zulu'), false);

      await store.createMachine(target('env-user-1', { environments: ['alpha'] }));
      await store.createMachine(target('env-user-2', { environments: ['alpha'] }));
      await assert.rejects(store.deleteEnvironment('alpha'), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'REEF_IN_USE');
        assert.match(err.message, /env-user-1, env-user-2/);
        return true;
      });
      await store.deleteMachine('env-user-1');
      await store.deleteMachine('env-user-2');
      assert.equal(await store.deleteEnvironment('alpha'), true);
    });

    it('worker pools behave the same way', async () => {
      const pool = await store.ensureWorkerPool('Builders');
      assert.equal((await store.ensureWorkerPool('builders')).id, pool.id);
      await store.createMachine(worker('builder-1', { workerPools: ['Builders'] }));
      await assert.rejects(store.deleteWorkerPool(pool.id), { code: 'REEF_IN_USE', message: /builder-1/ });
      await store.deleteMachine('builder-1');
      assert.equal(await store.deleteWorkerPool(pool.id), true);
      assert.equal(await store.getWorkerPool('Builders'), null);
    });
  });

  describe(`${kind} store: machines`, () => {
    let t: TempStore;
    let store: Store;
    before(async () => {
      t = await open();
      store = t.store;
    });
    after(() => t.cleanup());

    it('creates a target with environments on demand and reads it back by id, name and thumbprint', async () => {
      const tp = thumbprint();
      const colons = tp.toLowerCase().match(/../g)!.join(':');
      const m = await store.createMachine(
        target('Web-01', {
          thumbprint: colons,
          environments: ['Test', 'Production', 'test'],
          roles: ['web', 'api'],
          tentacleVersion: '1.2.3',
          platform: { os: 'linux', arch: 'x64' },
        }),
      );
      assert.match(m.id, /^m-[a-z2-7]{12}$/);
      assert.equal(m.thumbprint, tp, 'thumbprint normalized');
      assert.deepEqual(m.environments, ['Production', 'Test']);
      assert.deepEqual(m.roles, ['api', 'web']);
      assert.deepEqual(m.workerPools, []);
      assert.equal(m.endpoint, null);
      assert.equal(m.lastHealth, 'unknown');
      assert.equal(m.lastSeenAt, null);
      assert.deepEqual(m.platform, { os: 'linux', arch: 'x64' });
      assert.ok(await store.getEnvironment('Test'), 'environment created on demand');

      assert.deepEqual(await store.getMachine(m.id), m);
      assert.deepEqual(await store.getMachine('web-01'), m);
      assert.deepEqual(await store.getMachineByThumbprint(tp.toLowerCase()), m);
      assert.equal(await store.getMachine('web-02'), null);
    });

    it('refuses a duplicate name (any case) or thumbprint with REEF_CONFLICT that names the holder', async () => {
      const first = await store.createMachine(target('dup-01'));
      await assert.rejects(store.createMachine(target('DUP-01')), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'REEF_CONFLICT');
        assert.match(err.message, /name "DUP-01" is already used by m-/);
        assert.match(err.message, /--force/);
        return true;
      });
      await assert.rejects(
        store.createMachine(target('dup-02', { thumbprint: first.thumbprint.toLowerCase() })),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'REEF_CONFLICT');
          assert.match(err.message, new RegExp(`thumbprint ${first.thumbprint} is already registered as "dup-01"`));
          return true;
        },
      );
      assert.equal(await store.getMachine('dup-02'), null, 'nothing half-created');
    });

    it('refuses input that can never be valid', async () => {
      const bad: [string, Parameters<Store['createMachine']>[0]][] = [
        ['bad thumbprint', target('x1', { thumbprint: 'abc' })],
        ['target without environment', target('x2', { environments: [] })],
        ['target without role', target('x3', { roles: [] })],
        ['target in a pool', target('x4', { workerPools: ['p'] })],
        ['worker without pool', worker('x5', { workerPools: [] })],
        ['worker with roles', worker('x6', { roles: ['web'] })],
        ['listening without endpoint', target('x7', { commsStyle: 'listening' })],
        ['listening with bad port', target('x8', { commsStyle: 'listening', endpoint: { host: 'h', port: 70000 } })],
        ['polling with endpoint', target('x9', { endpoint: { host: 'h', port: 10933 } })],
        ['empty name', target(' ')],
      ];
      for (const [why, input] of bad) {
        await assert.rejects(store.createMachine(input), (err: Error & { code?: string }) => {
          assert.ok(['REEF_INVALID_ARGUMENT', 'REEF_BAD_THUMBPRINT'].includes(err.code ?? ''), `${why}: ${err.message}`);
          return true;
        });
      }
    });

    it('stores a listening endpoint', async () => {
      const m = await store.createMachine(
        target('listener-01', { commsStyle: 'listening', endpoint: { host: 'db1.example.com', port: 10933 } }),
      );
      assert.deepEqual(m.endpoint, { host: 'db1.example.com', port: 10933 });
      assert.equal(m.commsStyle, 'listening');
    });

    it('filters by kind, environment, role, worker pool and names', async () => {
      const s = await open();
      try {
        await s.store.createMachine(target('a-web-prod', { environments: ['Production'], roles: ['web'] }));
        await s.store.createMachine(target('b-db-prod', { environments: ['Production'], roles: ['db'] }));
        await s.store.createMachine(target('c-web-test', { environments: ['Test'], roles: ['Web', 'db'] }));
        await s.store.createMachine(worker('d-worker', { workerPools: ['Pool A'] }));
        await s.store.createMachine(worker('e-worker', { workerPools: ['Pool A', 'Pool B'] }));
        const names = async (f: Parameters<Store['listMachines']>[0]) => (await s.store.listMachines(f)).map((m) => m.name);

        assert.deepEqual(await names(undefined), ['a-web-prod', 'b-db-prod', 'c-web-test', 'd-worker', 'e-worker']);
        assert.deepEqual(await names({ kind: 'worker' }), ['d-worker', 'e-worker']);
        assert.deepEqual(await names({ environment: 'production' }), ['a-web-prod', 'b-db-prod']);
        assert.deepEqual(await names({ role: 'web' }), ['a-web-prod', 'c-web-test']);
        assert.deepEqual(await names({ environment: 'Production', role: 'web' }), ['a-web-prod']);
        assert.deepEqual(await names({ workerPool: 'pool b' }), ['e-worker']);
        assert.deepEqual(await names({ names: ['E-WORKER', 'a-web-prod', 'missing'] }), ['a-web-prod', 'e-worker']);
        assert.deepEqual(await names({ environment: 'Nowhere' }), []);
        const e = (await s.store.listMachines({ workerPool: 'Pool B' }))[0]!;
        assert.deepEqual(e.workerPools, ['Pool A', 'Pool B']);
      } finally {
        await s.cleanup();
      }
    });

    it('upsertMachine re-registers by thumbprint, keeping id and health', async () => {
      const created = await store.upsertMachine(target('force-01', { roles: ['web'] }));
      assert.equal(created.created, true);
      const id = created.machine.id;
      await store.recordHealth(id, { ok: true });

      const again = await store.upsertMachine(
        target('force-01-renamed', { thumbprint: created.machine.thumbprint, roles: ['db'], environments: ['Staging'] }),
      );
      assert.equal(again.created, false);
      assert.equal(again.machine.id, id);
      assert.equal(again.machine.name, 'force-01-renamed');
      assert.deepEqual(again.machine.roles, ['db']);
      assert.deepEqual(again.machine.environments, ['Staging']);
      assert.equal(again.machine.lastHealth, 'healthy');
      assert.equal((await store.listHealth(id)).length, 1);
    });

    it('upsertMachine replaces the certificate of a machine found by name', async () => {
      const old = await store.createMachine(target('reinstalled-01'));
      const tp = thumbprint();
      const { machine, created } = await store.upsertMachine(target('reinstalled-01', { thumbprint: tp }));
      assert.equal(created, false);
      assert.equal(machine.id, old.id);
      assert.equal(machine.thumbprint, tp);
      assert.equal(await store.getMachineByThumbprint(old.thumbprint), null);
    });

    it('upsertMachine refuses when name and thumbprint belong to two machines', async () => {
      const a = await store.createMachine(target('pair-a'));
      await store.createMachine(target('pair-b'));
      await assert.rejects(store.upsertMachine(target('pair-b', { thumbprint: a.thumbprint })), {
        code: 'REEF_CONFLICT',
        message: /pair-a.*pair-b|belongs to machine "pair-a"/,
      });
    });

    it('touchMachines records many contacts at one time, with or without a carrier', async () => {
      const m1 = await store.createMachine(target('touch-1'));
      const m2 = await store.createMachine(target('touch-2'));
      const at = new Date('2026-12-01T10:00:00.000Z');
      await store.touchMachines([{ thumbprint: m1.thumbprint.toLowerCase(), carrier: 'websocket' }, { thumbprint: m2.thumbprint }, { thumbprint: thumbprint() }], at);
      await store.touchMachines([], at);
      const [one, two] = [await store.getMachine(m1.id), await store.getMachine(m2.id)];
      assert.equal(one!.lastSeenAt, at.toISOString());
      assert.equal(one!.carrier, 'websocket');
      assert.equal(two!.lastSeenAt, at.toISOString());
      assert.equal(two!.carrier, m2.carrier);
    });

    it('touchMachine records contact; unknown thumbprints return false', async () => {
      const m = await store.createMachine(target('touch-01'));
      const at = '2024-05-01T10:00:00.000Z';
      assert.equal(await store.touchMachine(m.thumbprint, { lastSeenAt: at, carrier: 'websocket', version: '2.0.0' }), true);
      let read = (await store.getMachine(m.id))!;
      assert.equal(read.lastSeenAt, at);
      assert.equal(read.carrier, 'websocket');
      assert.equal(read.tentacleVersion, '2.0.0');
      assert.equal(await store.touchMachine(m.thumbprint.toLowerCase(), {}), true, 'only lastSeenAt, defaulting to now');
      read = (await store.getMachine(m.id))!;
      assert.equal(read.carrier, 'websocket', 'untouched fields stay');
      assert.ok(read.lastSeenAt! > at);
      assert.equal(await store.touchMachine(thumbprint(), { carrier: 'tcp' }), false);
    });

    it('recordHealth keeps a history, newest first, and sets lastHealth', async () => {
      const m = await store.createMachine(target('health-01'));
      await store.recordHealth(m.id, { ok: true, at: '2024-01-01T00:00:00.000Z', details: { disk: 'ok' } });
      const last = await store.recordHealth(m.id, { ok: false, at: new Date('2024-01-02T00:00:00Z'), details: { disk: 'full' } });
      assert.equal(last.ok, false);
      const read = (await store.getMachine(m.id))!;
      assert.equal(read.lastHealth, 'unhealthy');
      assert.equal(read.lastHealthAt, '2024-01-02T00:00:00.000Z');
      const history = await store.listHealth(m.id);
      assert.deepEqual(
        history.map((h) => [h.ok, h.details]),
        [
          [false, { disk: 'full' }],
          [true, { disk: 'ok' }],
        ],
      );
      assert.equal((await store.listHealth(m.id, 1)).length, 1);
      await assert.rejects(store.recordHealth('m-missing', { ok: true }), { code: 'REEF_NOT_FOUND' });

      assert.equal(await store.deleteMachine(m.id), true);
      assert.deepEqual(await store.listHealth(m.id), [], 'history goes with the machine');
      assert.equal(await store.deleteMachine(m.id), false);
    });

    it('rejects calls after close', async () => {
      const s = await open();
      await s.store.close();
      await s.store.close();
      await assert.rejects(s.store.listMachines(), { code: 'REEF_STORE_CLOSED' });
      await s.cleanup();
    });
  });
});

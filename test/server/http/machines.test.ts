import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MachineView, RegisterMachineResponse } from '../../../src/api/contract.js';
import { startHarness, thumbprint, type Harness } from './harness.js';

describe('api machines, environments, worker pools', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  const post = (path: string, body: unknown) => h.raw('POST', path, { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const target = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    kind: 'target',
    thumbprint: thumbprint(),
    commsStyle: 'polling',
    environments: ['Production'],
    roles: ['web'],
    ...extra,
  });

  it('registers a target (201) with a normalized thumbprint and returns the server info', async () => {
    const tp = thumbprint();
    const colons = tp.toLowerCase().match(/../g)!.join(':');
    const r = await post('/api/machines', target('web-01', { thumbprint: colons, tentacleVersion: '1.2.3' }));
    assert.equal(r.status, 201);
    const body = r.json as RegisterMachineResponse;
    assert.equal(body.created, true);
    assert.equal(body.machine.thumbprint, tp);
    assert.equal(body.machine.name, 'web-01');
    assert.deepEqual(body.machine.environments, ['Production']);
    assert.deepEqual(body.machine.connections, []);
    assert.equal(body.machine.online, false);
    assert.equal(body.machine.tentacleVersion, '1.2.3');
    assert.deepEqual(body.server, h.info);
    assert.ok(!('platform' in body.machine));
  });

  it('refuses a duplicate name or thumbprint with 409 pointing at --force; --force replaces', async () => {
    const first = await post('/api/machines', target('db-01', { environments: ['Staging'], roles: ['db'] }));
    assert.equal(first.status, 201);
    const dupName = await post('/api/machines', target('DB-01', { environments: ['Staging'], roles: ['db'] }));
    assert.equal(dupName.status, 409);
    assert.equal(dupName.json.error.code, 'REEF_CONFLICT');
    assert.match(dupName.json.error.message, /--force/);
    const dupThumb = await post('/api/machines', target('db-02', { thumbprint: first.json.machine.thumbprint }));
    assert.equal(dupThumb.status, 409);
    assert.match(dupThumb.json.error.message, /--force/);

    const newTp = thumbprint();
    const forced = await post('/api/machines', target('db-01', { thumbprint: newTp, environments: ['Staging'], roles: ['db', 'cache'], force: true }));
    assert.equal(forced.status, 200);
    assert.equal(forced.json.created, false);
    assert.equal(forced.json.machine.id, first.json.machine.id);
    assert.equal(forced.json.machine.thumbprint, newTp);
    assert.deepEqual(forced.json.machine.roles, ['cache', 'db']);

    const fresh = await post('/api/machines', target('db-03', { environments: ['Staging'], roles: ['db'], force: true }));
    assert.equal(fresh.status, 201);
    assert.equal(fresh.json.created, true);
  });

  it('validates registrations field by field', async () => {
    const badTp = await post('/api/machines', target('x1', { thumbprint: 'ABCD' }));
    assert.equal(badTp.status, 400);
    assert.equal(badTp.json.error.code, 'REEF_BAD_THUMBPRINT');
    assert.match(badTp.json.error.message, /64 hexadecimal digits/);

    const unknown = await post('/api/machines', target('x2', { colour: 'blue' }));
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json.error.code, 'REEF_INVALID_REQUEST');
    assert.match(unknown.json.error.message, /colour: is not a known field/);

    const many = await post('/api/machines', { name: '', kind: 'robot', commsStyle: 'polling', roles: [''] });
    assert.equal(many.status, 400);
    const msg = many.json.error.message as string;
    assert.match(msg, /name: must not be empty/);
    assert.match(msg, /kind: must be one of target, worker/);
    assert.match(msg, /thumbprint: is required/);
    assert.match(msg, /roles\.0: must not be empty/);
    assert.ok(Array.isArray(many.json.error.details.problems));

    const wrongType = await post('/api/machines', target('x3', { endpoint: { host: 'h', port: 'eighty' } }));
    assert.match(wrongType.json.error.message, /endpoint\.port: must be a number, not string/);

    const noRoles = await post('/api/machines', target('x4', { roles: [] }));
    assert.equal(noRoles.status, 400);
    assert.equal(noRoles.json.error.code, 'REEF_INVALID_ARGUMENT');
    assert.match(noRoles.json.error.message, /at least one role/);

    const listeningNoEndpoint = await post('/api/machines', target('x5', { commsStyle: 'listening' }));
    assert.equal(listeningNoEndpoint.status, 400);

    const notObject = await post('/api/machines', [1, 2]);
    assert.equal(notObject.status, 400);
    assert.match(notObject.json.error.message, /\(body\): must be an object, not array/);
  });

  it('registers workers and lists machines with filters', async () => {
    for (const name of ['worker-a', 'worker-b']) {
      const r = await post('/api/machines', { name, kind: 'worker', thumbprint: thumbprint(), commsStyle: 'polling', workerPools: ['Builders'] });
      assert.equal(r.status, 201);
    }
    const listening = await post('/api/machines', target('app-01', { commsStyle: 'listening', endpoint: { host: 'app-01.local', port: 10933 }, roles: ['app'] }));
    assert.equal(listening.status, 201);
    assert.deepEqual(listening.json.machine.endpoint, { host: 'app-01.local', port: 10933 });

    const all = await h.client.json<{ items: MachineView[] }>('GET', '/api/machines');
    assert.ok(all.items.length >= 6);
    const names = (q: string) => h.client.json<{ items: MachineView[] }>('GET', `/api/machines${q}`).then((r) => r.items.map((m) => m.name));
    assert.deepEqual(await names('?kind=worker'), ['worker-a', 'worker-b']);
    assert.deepEqual(await names('?workerPool=builders'), ['worker-a', 'worker-b']);
    assert.deepEqual(await names('?environment=production&role=app'), ['app-01']);
    assert.deepEqual(await names('?environment=Production&role=web'), ['web-01']);
    assert.deepEqual(await names('?role=nobody-has-this'), []);

    const unknownEnv = await h.raw('GET', '/api/machines?environment=Narnia');
    assert.equal(unknownEnv.status, 404);
    assert.match(unknownEnv.json.error.message, /Narnia/);
    const unknownPool = await h.raw('GET', '/api/machines?workerPool=Nowhere');
    assert.equal(unknownPool.status, 404);
    const badKind = await h.raw('GET', '/api/machines?kind=robot');
    assert.equal(badKind.status, 400);
    assert.match(badKind.json.error.message, /kind must be one of target, worker/);
  });

  it('gets a machine by id or name, and its health', async () => {
    const byName = await h.client.json<MachineView>('GET', '/api/machines/web-01');
    const byId = await h.client.json<MachineView>('GET', `/api/machines/${byName.id}`);
    assert.deepEqual(byId, byName);
    await h.store.recordHealth(byName.id, { ok: true, details: { disk: 'ok' } });
    await h.store.recordHealth(byName.id, { ok: false });
    const health = await h.client.json<{ items: Array<{ ok: boolean }> }>('GET', '/api/machines/web-01/health?limit=1');
    assert.equal(health.items.length, 1);
    assert.equal(health.items[0]!.ok, false);
    const missing = await h.raw('GET', '/api/machines/nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'REEF_NOT_FOUND');
    const spaced = await h.raw('GET', `/api/machines/${encodeURIComponent('no such / machine')}`);
    assert.equal(spaced.status, 404);
    const badLimit = await h.raw('GET', '/api/machines/web-01/health?limit=0');
    assert.equal(badLimit.status, 400);
  });

  it('deletes machines by name and by thumbprint, closing their live connections', async () => {
    const disconnected: Array<[string, string]> = [];
    const original = h.comms.disconnect.bind(h.comms);
    h.comms.disconnect = (tp: string, reason: string) => {
      disconnected.push([tp, reason]);
      return original(tp, reason);
    };
    try {
      const m = await h.client.json<MachineView>('GET', '/api/machines/db-03');
      assert.equal((await h.raw('DELETE', '/api/machines/db-03')).status, 204);
      assert.deepEqual(disconnected, [[m.thumbprint, 'machine db-03 was deleted']]);
      assert.equal((await h.raw('GET', '/api/machines/db-03')).status, 404);
      assert.equal((await h.raw('DELETE', '/api/machines/db-03')).status, 404);

      const w = await h.client.json<MachineView>('GET', '/api/machines/worker-b');
      const colons = w.thumbprint.match(/../g)!.join(':');
      assert.equal((await h.raw('DELETE', `/api/machines/by-thumbprint/${colons}`)).status, 204);
      assert.deepEqual(disconnected[1], [w.thumbprint, 'machine worker-b was deleted']);
      assert.equal((await h.raw('DELETE', `/api/machines/by-thumbprint/${w.thumbprint}`)).status, 404);
      const bad = await h.raw('DELETE', '/api/machines/by-thumbprint/xyz');
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.code, 'REEF_BAD_THUMBPRINT');
    } finally {
      h.comms.disconnect = original;
    }
  });

  it('creates, lists, gets and deletes environments and worker pools; refuses deleting one in use', async () => {
    for (const [path, inUse] of [['/api/environments', 'Production'], ['/api/worker-pools', 'Builders']] as const) {
      const created = await post(path, { name: 'Empty One' });
      assert.equal(created.status, 201);
      assert.equal(created.json.name, 'Empty One');
      const again = await post(path, { name: 'empty one' });
      assert.equal(again.status, 200);
      assert.equal(again.json.id, created.json.id);
      const list = await h.client.json<{ items: Array<{ name: string }> }>('GET', path);
      assert.ok(list.items.some((e) => e.name === 'Empty One'));
      assert.equal((await h.raw('GET', `${path}/${created.json.id}`)).json.name, 'Empty One');

      const refused = await h.raw('DELETE', `${path}/${encodeURIComponent(inUse)}`);
      assert.equal(refused.status, 409);
      assert.equal(refused.json.error.code, 'REEF_IN_USE');

      assert.equal((await h.raw('DELETE', `${path}/${encodeURIComponent('Empty One')}`)).status, 204);
      assert.equal((await h.raw('DELETE', `${path}/${encodeURIComponent('Empty One')}`)).status, 404);
      const bad = await post(path, { name: '   ' });
      assert.equal(bad.status, 400);
      assert.match(bad.json.error.message, /name: must not be empty/);
      const extra = await post(path, { name: 'x', colour: 1 });
      assert.match(extra.json.error.message, /colour: is not a known field/);
    }
  });
});

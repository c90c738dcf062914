import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { TentacleComms } from '../../src/comms/index.js';
import { connected, echo, services, startPollingTentacle, startServer, testIdentities } from './harness.js';

test('a tentacle the server does not trust is refused, and told which thumbprint and what to run', async () => {
  const ids = await testIdentities();
  const { server, port } = await startServer(new Set([ids.tentacle.thumbprint]));
  const { comms, poller } = await startPollingTentacle(port, { echo }, { identity: ids.stranger });
  try {
    const [err] = (await once(poller, 'failed')) as [Error & { code: string }];
    assert.equal(err.code, 'REEF_UNTRUSTED_CERTIFICATE');
    assert.match(err.message, new RegExp(ids.stranger.thumbprint));
    assert.match(err.message, /tentacle register-with/);
    assert.equal(server.links.size, 0);
  } finally {
    await comms.close();
    await server.close();
  }
});

test('a polling tentacle refuses a server whose thumbprint it does not trust: a possible interception first, then how to check and trust', async () => {
  const ids = await testIdentities();
  const { server, port } = await startServer(new Set([ids.tentacle.thumbprint]));
  const { comms, poller } = await startPollingTentacle(port, { echo }, { trusted: [ids.stranger.thumbprint] });
  try {
    const [err] = (await once(poller, 'failed')) as [Error & { code: string }];
    assert.equal(err.code, 'REEF_UNTRUSTED_CERTIFICATE');
    assert.match(err.message, new RegExp(`presented certificate thumbprint ${ids.server.thumbprint}`));
    assert.match(err.message, new RegExp(`it trusts ${ids.stranger.thumbprint}`));
    // The trust command may not come first: it is what an interceptor would want run.
    const interception = err.message.indexOf('may be intercepting');
    const check = err.message.indexOf('"reef server show-thumbprint" prints on the server itself');
    const trust = err.message.indexOf(`tentacle configure --instance Tentacle --trust ${ids.server.thumbprint}`);
    assert.ok(interception > 0 && check > interception && trust > check, err.message);
    assert.match(err.message, /Only if they are the same/);
    assert.equal(server.links.size, 0);
  } finally {
    await comms.close();
    await server.close();
  }
});

test('a listening tentacle refuses an untrusted server, and the server refuses an unexpected tentacle', async () => {
  const ids = await testIdentities();
  const tentacle = new TentacleComms({ identity: ids.tentacle, services: services({ echo }) });
  const trusted = [ids.stranger.thumbprint];
  const port = await tentacle.listen(0, '127.0.0.1', (tp) => trusted.includes(tp), () => trusted);
  const { server } = await startServer(new Set());
  try {
    await assert.rejects(server.call({ thumbprint: ids.tentacle.thumbprint, listening: { host: '127.0.0.1', port } }, 'echo', 1), (err: Error & { code: string }) => {
      assert.equal(err.code, 'REEF_UNTRUSTED_CERTIFICATE');
      assert.match(err.message, new RegExp(`thumbprint ${ids.server.thumbprint}`));
      assert.match(err.message, new RegExp(`--trust ${ids.server.thumbprint}`));
      assert.ok(err.message.indexOf('reef server show-thumbprint') < err.message.indexOf('--trust'), err.message);
      return true;
    });
    // The server expects another certificate at that address than the one presented.
    trusted.push(ids.server.thumbprint);
    await assert.rejects(
      server.call({ thumbprint: ids.stranger.thumbprint, name: 'web-01', listening: { host: '127.0.0.1', port } }, 'echo', 1),
      (err: Error & { code: string }) => {
        assert.equal(err.code, 'REEF_UNTRUSTED_CERTIFICATE');
        assert.match(err.message, new RegExp(`presented certificate thumbprint ${ids.tentacle.thumbprint}, but Tentacle "web-01"`));
        return true;
      },
    );
  } finally {
    await server.close();
    await tentacle.close();
  }
});

test('revoking trust closes the live connection at once and refuses the reconnect', async () => {
  const ids = await testIdentities();
  const trusted = new Set([ids.tentacle.thumbprint]);
  const { server, port } = await startServer(trusted);
  const { comms, poller } = await startPollingTentacle(port, { echo });
  try {
    const link = await connected(server, ids.tentacle.thumbprint);
    trusted.delete(ids.tentacle.thumbprint);
    const refused = once(poller, 'failed');
    assert.equal(server.disconnect(ids.tentacle.thumbprint, 'the machine was deleted'), 1);
    assert.equal((await link.closed)?.message, 'the machine was deleted');
    const [err] = (await refused) as [Error & { code: string }];
    assert.equal(err.code, 'REEF_UNTRUSTED_CERTIFICATE');
    assert.equal(server.links.size, 0);
  } finally {
    await comms.close();
    await server.close();
  }
});

test('a call for a polling tentacle that never connects fails after the pickup timeout, naming it', async () => {
  const ids = await testIdentities();
  const { server } = await startServer(new Set(), { pickupTimeoutMs: 200 });
  const seen = new Date('2026-11-01T10:00:00Z');
  try {
    await assert.rejects(server.call({ thumbprint: ids.tentacle.thumbprint, name: 'shop-17' }, 'echo', 1), (err: Error & { code: string }) => {
      assert.equal(err.code, 'REEF_TENTACLE_NOT_CONNECTED');
      assert.match(err.message, /Tentacle "shop-17"/);
      assert.match(err.message, /never been seen/);
      return true;
    });
  } finally {
    await server.close();
  }
  const withHistory = new (server.constructor as typeof import('../../src/comms/index.js').CommsServer)({
    identity: ids.server,
    trust: () => false,
    limits: { pickupTimeoutMs: 100 },
    lastSeenAt: () => seen,
  });
  await assert.rejects(withHistory.call({ thumbprint: ids.tentacle.thumbprint, name: 'shop-17' }, 'echo', 1), /last seen 2026-11-01T10:00:00.000Z/);
  await withHistory.close();
});

test('a call waiting for pickup is served as soon as the tentacle connects', async () => {
  const ids = await testIdentities();
  const { server, port } = await startServer(new Set([ids.tentacle.thumbprint]));
  const call = server.call({ thumbprint: ids.tentacle.thumbprint }, 'echo', 'queued');
  await new Promise((r) => setTimeout(r, 100));
  const { comms } = await startPollingTentacle(port, { echo });
  try {
    assert.equal(await call, 'queued');
  } finally {
    await comms.close();
    await server.close();
  }
});

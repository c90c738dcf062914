/**
 * Server certificate rotation, the comms part: a server that switched certificate still
 * presents the earlier one to a Tentacle that asks for it by thumbprint (the only way a TLS
 * server can choose per connection is the server name), and a Tentacle that is presented
 * an untrusted certificate asks for the one it trusts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { certificateRequestName, requestedThumbprint } from '../../src/comms/certificate-request.js';
import { CommsServer, TentacleComms } from '../../src/comms/index.js';
import { generateCertificate } from '../../src/pki/certificate.js';
import { connected, echo, services, startPollingTentacle, testIdentities } from './harness.js';

test('a certificate request name holds the whole thumbprint in two DNS labels under .invalid, and nothing else is one', async () => {
  const { server } = await testIdentities();
  const name = certificateRequestName(server.thumbprint);
  assert.ok(name.split('.').every((label) => label.length <= 63), name);
  assert.match(name, /\.invalid$/);
  assert.equal(requestedThumbprint(name), server.thumbprint);
  assert.equal(requestedThumbprint(name.toUpperCase()), server.thumbprint);
  assert.equal(requestedThumbprint('polling.example.com'), undefined);
  assert.equal(requestedThumbprint(name.slice(1)), undefined);
});

test('after the server switches certificate, a Tentacle trusting only the old one asks for it and gets in; one trusting the new one gets the new', async () => {
  const ids = await testIdentities();
  const next = await generateCertificate('Reef Server next');
  const server = new CommsServer({
    identity: ids.server,
    trust: (tp) => tp === ids.tentacle.thumbprint || tp === ids.stranger.thumbprint,
    presentable: (tp) => (tp === ids.server.thumbprint ? ids.server : undefined),
  });
  const port = await server.listen(0, '127.0.0.1');
  server.setIdentity(next);
  const old = await startPollingTentacle(port, { echo }, { trusted: [ids.server.thumbprint] });
  const oldConnected = once(old.poller, 'connected');
  const fresh = await startPollingTentacle(port, { echo }, { identity: ids.stranger, trusted: [next.thumbprint] });
  const freshConnected = once(fresh.poller, 'connected');
  try {
    const [peer] = (await oldConnected) as [{ thumbprint: string }];
    assert.equal(peer.thumbprint, ids.server.thumbprint, 'the old Tentacle is on the old certificate');
    const oldLink = await connected(server, ids.tentacle.thumbprint);
    assert.equal(oldLink.peer.presented, ids.server.thumbprint, 'the server knows it presented the old one');
    assert.equal(await oldLink.call('echo', 'hi'), 'hi');

    const [freshPeer] = (await freshConnected) as [{ thumbprint: string }];
    assert.equal(freshPeer.thumbprint, next.thumbprint);
    assert.equal((await connected(server, ids.stranger.thumbprint)).peer.presented, next.thumbprint);
  } finally {
    await old.comms.close();
    await fresh.comms.close();
    await server.close();
  }
});

test('a server that does not hold the certificate asked for presents its own, and the Tentacle is refused as before', async () => {
  const ids = await testIdentities();
  const server = new CommsServer({ identity: ids.server, trust: () => true });
  const port = await server.listen(0, '127.0.0.1');
  const { comms, poller } = await startPollingTentacle(port, { echo }, { trusted: [ids.stranger.thumbprint] });
  try {
    const [err] = (await once(poller, 'failed')) as [Error & { code: string }];
    assert.equal(err.code, 'REEF_UNTRUSTED_CERTIFICATE');
    assert.match(err.message, new RegExp(`presented certificate thumbprint ${ids.server.thumbprint}`));
    assert.equal(server.links.size, 0);
  } finally {
    await comms.close();
    await server.close();
  }
});

test('a listening Tentacle that trusts only the certificate before the rotation is dialled again with it', async () => {
  const ids = await testIdentities();
  const next = await generateCertificate('Reef Server next');
  const tentacle = new TentacleComms({ identity: ids.tentacle, services: services({ echo }) });
  const trusted = [ids.server.thumbprint];
  const port = await tentacle.listen(0, '127.0.0.1', (tp) => trusted.includes(tp), () => trusted);
  const server = new CommsServer({ identity: next, trust: () => true, earlierIdentities: () => [ids.server] });
  const target = { thumbprint: ids.tentacle.thumbprint, listening: { host: '127.0.0.1', port } };
  try {
    assert.equal(await server.call(target, 'echo', 'hi'), 'hi');
    assert.equal(server.links.pick(ids.tentacle.thumbprint)!.peer.presented, ids.server.thumbprint);
    // Once it trusts the new one, a new dial uses that.
    trusted.push(next.thumbprint);
    tentacle.disconnect(ids.server.thumbprint);
    await waitUntil(() => server.links.size === 0);
    assert.equal(await server.call(target, 'echo', 'again'), 'again');
    assert.equal(server.links.pick(ids.tentacle.thumbprint)!.peer.presented, next.thumbprint);
  } finally {
    await server.close();
    await tentacle.close();
  }
});

async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(check(), 'the condition did not come true within 2 s');
}

/**
 * A registration-only session (ALPN reef-register): a certificate nobody trusts reaches the
 * one registration call, once, and nothing else; silence is cut at the deadline; one
 * address holds only so many at once; an older server and a wrong server are told apart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REGISTER_METHOD, registerOverComms, RpcClient, type CommsLimits, type PeerInfo } from '../../src/comms/index.js';
import { dialSecure } from '../../src/comms/dialer.js';
import { resolveLimits } from '../../src/comms/limits.js';
import { silentLogger } from '../../src/logging.js';
import { ReefError } from '../../src/errors.js';
import { startServer, testIdentities } from './harness.js';

type Seen = { args: unknown; peer: PeerInfo };

async function registrar(limits: Partial<CommsLimits> = {}) {
  const ids = await testIdentities();
  const { server, port } = await startServer(new Set([ids.tentacle.thumbprint]), limits);
  const seen: Seen[] = [];
  server.acceptRegistrations(async (args, peer) => {
    seen.push({ args, peer });
    if ((args as { apiKey?: string }).apiKey !== 'right') throw new ReefError('REEF_BAD_API_KEY', 'The API key is not valid.');
    return { registered: peer.thumbprint };
  });
  return { server, port, seen, ids };
}

/** A raw registration session: the dial and the HTTP/2 client, for calls the Tentacle would never make. */
async function openSession(port: number, limits: Partial<CommsLimits> = {}) {
  const ids = await testIdentities();
  const { socket, peer } = await dialSecure({
    identity: ids.stranger,
    host: '127.0.0.1',
    port,
    expected: [ids.server.thumbprint],
    explainMismatch: (tp) => `mismatch ${tp}`,
    carrier: 'tcp',
    handshakeTimeoutMs: 5000,
    registering: true,
  });
  return new RpcClient(socket, peer, resolveLimits(limits), silentLogger);
}

function target(port: number) {
  return { host: '127.0.0.1', port, carrier: 'tcp' };
}

test('an unregistered certificate registers over comms: one call, answered, with the certificate it dialled with', async () => {
  const { server, port, seen, ids } = await registrar();
  try {
    const answer = await registerOverComms(
      { identity: ids.stranger, target: target(port), pinned: ids.server.thumbprint, explainMismatch: (tp) => `mismatch ${tp}` },
      { apiKey: 'right', request: { name: 'x' } },
    );
    assert.deepEqual(answer, { registered: ids.stranger.thumbprint });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.peer.thumbprint, ids.stranger.thumbprint);
    assert.deepEqual(seen[0]!.args, { apiKey: 'right', request: { name: 'x' } });
    // The registration session is no comms link: nothing can call it, nothing routes to it.
    assert.equal(server.links.size, 0);
    // The handler's refusal comes back with its code, as the REST API would give it.
    await assert.rejects(
      registerOverComms({ identity: ids.stranger, target: target(port), pinned: ids.server.thumbprint, explainMismatch: (tp) => tp }, { apiKey: 'wrong' }),
      (err: ReefError) => err.code === 'REEF_BAD_API_KEY',
    );
  } finally {
    await server.close();
  }
});

test('a registration session serves nothing but its one call: another method is refused, and so is any call after it', async () => {
  const { server, port, seen } = await registrar();
  try {
    const client = await openSession(port);
    await assert.rejects(client.call('scripts.start', { script: 'id' }), (err: ReefError) => {
      assert.equal(err.code, 'REEF_REGISTRATION_ONLY');
      assert.match(err.message, /serves registration\.register only, not "scripts\.start"/);
      return true;
    });
    // That was its one call: the registration itself is not made any more.
    await assert.rejects(client.call(REGISTER_METHOD, { apiKey: 'right' }), (err: ReefError) => {
      assert.equal(err.code, 'REEF_REGISTRATION_ONLY');
      assert.match(err.message, /answers one call; this one had its call already/);
      return true;
    });
    assert.equal(seen.length, 0);
    // And the server closes the session by itself soon after its call.
    await client.closed;

    // Two calls at once: one is answered, the other refused.
    const again = await openSession(port);
    const outcomes = await Promise.allSettled([again.call(REGISTER_METHOD, { apiKey: 'right' }), again.call(REGISTER_METHOD, { apiKey: 'right' })]);
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1, JSON.stringify(outcomes));
    assert.equal(seen.length, 1);
    again.close();
  } finally {
    await server.close();
  }
});

test('a silent registration session is cut at its deadline, and an oversized registration is refused', async () => {
  const { server, port, seen } = await registrar({ registrationTimeoutMs: 300, maxRegistrationMessageBytes: 1024 });
  try {
    const silent = await openSession(port, { heartbeatIntervalMs: 0 });
    let timer: NodeJS.Timeout | undefined;
    const reason = await Promise.race([silent.closed.then(() => 'closed'), new Promise((resolve) => (timer = setTimeout(() => resolve('still open'), 10_000)))]);
    clearTimeout(timer);
    assert.equal(reason, 'closed');

    const big = await openSession(port);
    await assert.rejects(big.call(REGISTER_METHOD, { apiKey: 'right', padding: 'x'.repeat(4096) }), (err: ReefError) => err.code === 'REEF_MESSAGE_TOO_LARGE');
    assert.equal(seen.length, 0);
    big.close();
  } finally {
    await server.close();
  }
});

test('one address holds at most maxRegistrationSessionsPerAddress registration sessions at once', async () => {
  const { server, port } = await registrar({ maxRegistrationSessionsPerAddress: 1 });
  try {
    const first = await openSession(port);
    await assert.rejects(openSession(port), (err: ReefError) => {
      assert.equal(err.code, 'REEF_TOO_MANY_CONNECTIONS');
      assert.match(err.message, /maxRegistrationSessionsPerAddress/);
      return true;
    });
    first.close();
    await first.closed;
    // The slot is given back when the session closes.
    const third = await waitForAdmission(port);
    third.close();
  } finally {
    await server.close();
  }
});

async function waitForAdmission(port: number): Promise<RpcClient> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await openSession(port);
    } catch (err) {
      if (attempt > 50 || (err as ReefError).code !== 'REEF_TOO_MANY_CONNECTIONS') throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

test('a server that does not serve registrations, and a server that is not the pinned one, are told apart; nothing is sent to either', async () => {
  const ids = await testIdentities();
  const { server: older, port } = await startServer(new Set());
  try {
    await assert.rejects(
      registerOverComms({ identity: ids.stranger, target: target(port), pinned: ids.server.thumbprint, explainMismatch: (tp) => `mismatch ${tp}` }, { apiKey: 'right' }),
      (err: ReefError) => {
        assert.equal(err.code, 'REEF_REGISTRATION_UNAVAILABLE');
        assert.match(err.message, /does not accept registrations over comms: it is older/);
        return true;
      },
    );
    await assert.rejects(
      registerOverComms({ identity: ids.stranger, target: target(port), pinned: ids.tentacle.thumbprint, explainMismatch: (tp) => `mismatch ${tp}` }, { apiKey: 'right' }),
      (err: ReefError) => err.code === 'REEF_UNTRUSTED_CERTIFICATE' && err.message === `mismatch ${ids.server.thumbprint}`,
    );
  } finally {
    await older.close();
  }
});

/**
 * TLS session resumption on comms: a restarted server that kept its session-ticket keys
 * resumes its Tentacles' sessions, and a resumed session is pinned as a full handshake is,
 * both ways (the server's trust check, the Tentacle's thumbprint check), on polling and
 * listening links.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { dialSecure } from '../../src/comms/dialer.js';
import { CommsServer, TentacleComms, type Poller } from '../../src/comms/index.js';
import type { PeerInfo } from '../../src/comms/peer.js';
import { newTicketKeys } from '../../src/comms/session-resumption.js';
import { fetchSessionTicket } from '../../src/comms/ticket-refresh.js';
import type { CertificateIdentity } from '../../src/pki/certificate.js';
import type { Thumbprint } from '../../src/pki/thumbprint.js';
import { connected, echo, services, startPollingTentacle, testIdentities } from './harness.js';

/** A comms server on `port` (0: any) with the given ticket keys; `trusted` is asked on every connection, and the asks are recorded. */
async function serverWith(ticketKeys: Buffer, trusted: Set<Thumbprint>, port = 0, identity?: CertificateIdentity) {
  const ids = await testIdentities();
  const asked: Thumbprint[] = [];
  const server = new CommsServer({
    identity: identity ?? ids.server,
    ticketKeys,
    trust: (tp) => {
      asked.push(tp);
      return trusted.has(tp);
    },
    limits: { idleTimeoutMs: 0 },
  });
  return { server, asked, port: await server.listen(port, '127.0.0.1') };
}

/** The next connection of `poller`: whether it resumed, or the error it failed with. */
async function nextOutcome(poller: Poller): Promise<{ resumed: boolean } | { code: string }> {
  const connectedOnce = once(poller, 'connected').then(([, resumed]) => ({ resumed: resumed as boolean }));
  const failedOnce = once(poller, 'failed').then(([err]) => ({ code: (err as Error & { code: string }).code }));
  return Promise.race([connectedOnce, failedOnce]);
}

/**
 * A polling Tentacle that made a full handshake with a server which has stopped since;
 * `restart` starts another on the same port with the same ticket keys (and `identity`).
 */
async function tentacleOfStoppedServer(keys: Buffer, trusted: Set<Thumbprint>) {
  const first = await serverWith(keys, trusted);
  const { comms, poller } = await startPollingTentacle(first.port, { echo });
  try {
    assert.deepEqual(await nextOutcome(poller), { resumed: false });
  } finally {
    await first.server.close();
  }
  return { comms, poller, restart: (identity?: CertificateIdentity) => serverWith(keys, trusted, first.port, identity) };
}

test('a restarted server that kept its ticket keys resumes the Tentacle, and still asks trust on the resumed session', async () => {
  const ids = await testIdentities();
  const { comms, poller, restart } = await tentacleOfStoppedServer(newTicketKeys(), new Set([ids.tentacle.thumbprint]));
  try {
    const second = await restart();
    try {
      assert.deepEqual(await nextOutcome(poller), { resumed: true });
      const link = await connected(second.server, ids.tentacle.thumbprint);
      assert.equal(link.peer.resumed, true);
      // The certificate travelled in the ticket, and was checked like any other.
      assert.deepEqual(second.asked, [ids.tentacle.thumbprint]);
      assert.equal(await link.call('echo', 'after resumption'), 'after resumption');
    } finally {
      await second.server.close();
    }
  } finally {
    await comms.close();
  }
});

test('a resumed session whose Tentacle was revoked meanwhile is refused', async () => {
  const ids = await testIdentities();
  const trusted = new Set([ids.tentacle.thumbprint]);
  const { comms, poller, restart } = await tentacleOfStoppedServer(newTicketKeys(), trusted);
  try {
    trusted.delete(ids.tentacle.thumbprint); // the machine was deleted while the server was down
    const second = await restart();
    try {
      assert.deepEqual(await nextOutcome(poller), { code: 'REEF_UNTRUSTED_CERTIFICATE' });
      assert.equal(second.server.links.size, 0);
      assert.ok(second.asked.includes(ids.tentacle.thumbprint));
      // The refused attempt offered a session this server resumes: registered again, it does.
      trusted.add(ids.tentacle.thumbprint);
      assert.deepEqual(await nextOutcome(poller), { resumed: true });
    } finally {
      await second.server.close();
    }
  } finally {
    await comms.close();
  }
});

test('a Tentacle does not resume a session with a server whose thumbprint it no longer trusts', async () => {
  const ids = await testIdentities();
  const keys = newTicketKeys();
  const { server, port } = await serverWith(keys, new Set([ids.tentacle.thumbprint]));
  const trusted = [ids.server.thumbprint];
  const { comms, poller } = await startPollingTentacle(port, { echo }, { trusted });
  try {
    assert.deepEqual(await nextOutcome(poller), { resumed: false });
    trusted.splice(0, 1, ids.stranger.thumbprint); // trust moved to another certificate
    server.disconnect(ids.tentacle.thumbprint, 'test: drop the link');
    assert.deepEqual(await nextOutcome(poller), { code: 'REEF_UNTRUSTED_CERTIFICATE' });
    assert.equal(server.links.size, 0);
  } finally {
    await comms.close();
    await server.close();
  }
});

test('a ticket issued by one server identity does not resume on another, even with the same ticket keys', async () => {
  const ids = await testIdentities();
  const { comms, poller, restart } = await tentacleOfStoppedServer(newTicketKeys(), new Set([ids.tentacle.thumbprint]));
  try {
    // Another certificate answers at the same address with the same ticket keys (a stolen
    // key file without the private key, or a server after a certificate rotation).
    const other = await restart(ids.stranger);
    const resumedThere: boolean[] = [];
    other.server.on('connected', (client) => resumedThere.push(client.peer.resumed === true));
    try {
      assert.deepEqual(await nextOutcome(poller), { code: 'REEF_UNTRUSTED_CERTIFICATE' });
      assert.deepEqual(resumedThere, []);
      assert.equal(other.server.links.size, 0);
    } finally {
      await other.server.close();
    }
  } finally {
    await comms.close();
  }
});

test('the server resumes its session with a listening Tentacle, which still checks the server on the resumed session', async () => {
  const ids = await testIdentities();
  const tentacle = new TentacleComms({ identity: ids.tentacle, services: services({ echo }) });
  const trustedByTentacle = new Set([ids.server.thumbprint]);
  const asked: Thumbprint[] = [];
  const port = await tentacle.listen(0, '127.0.0.1', (tp) => (asked.push(tp), trustedByTentacle.has(tp)), () => [...trustedByTentacle]);
  const { server } = await serverWith(newTicketKeys(), new Set());
  const target = { thumbprint: ids.tentacle.thumbprint, listening: { host: '127.0.0.1', port } };
  const peers: PeerInfo[] = [];
  server.on('connected', (client) => peers.push(client.peer));
  try {
    assert.equal(await server.call(target, 'echo', 1), 1);
    server.disconnect(ids.tentacle.thumbprint, 'test: drop the link');
    // disconnect forgets the session (trust revoked); a link that merely closed keeps it.
    assert.equal(await server.call(target, 'echo', 2), 2);
    server.links.pick(ids.tentacle.thumbprint)!.close();
    await waitUntil(() => server.links.size === 0);
    assert.equal(await server.call(target, 'echo', 3), 3);
    assert.deepEqual(peers.map((p) => p.resumed), [false, false, true]);
    assert.deepEqual(asked, [ids.server.thumbprint, ids.server.thumbprint, ids.server.thumbprint]);

    server.links.pick(ids.tentacle.thumbprint)!.close();
    await waitUntil(() => server.links.size === 0);
    trustedByTentacle.clear(); // the Tentacle stopped trusting this server meanwhile
    await assert.rejects(server.call(target, 'echo', 4, { pickupTimeoutMs: 3000 }), (err: Error & { code: string }) => {
      assert.equal(err.code, 'REEF_UNTRUSTED_CERTIFICATE');
      return true;
    });
  } finally {
    await server.close();
    await tentacle.close();
  }
});

test('a session made over the comms port resumes over a carrier handed to the acceptor (front door, WebSocket), and the other way', async () => {
  const ids = await testIdentities();
  const { server, port } = await serverWith(newTicketKeys(), new Set([ids.tentacle.thumbprint]));
  // What the front door and the WebSocket endpoint do: hand the raw stream to the acceptor.
  const handOver = net.createServer((socket) => server.accept(socket, 'websocket'));
  handOver.listen(0, '127.0.0.1');
  await once(handOver, 'listening');
  const handOverPort = (handOver.address() as net.AddressInfo).port;
  const carriers: string[] = [];
  server.on('connected', (client) => carriers.push(`${client.peer.carrier}:${client.peer.resumed ? 'resumed' : 'full'}`));
  const sessions: Buffer[] = [];
  const dial = async (to: number, session?: Buffer) => {
    const dialed = await dialSecure({
      identity: ids.tentacle,
      host: '127.0.0.1',
      port: to,
      expected: [ids.server.thumbprint],
      explainMismatch: () => 'unexpected',
      carrier: 'tcp',
      handshakeTimeoutMs: 5000,
      resume: session ? { session, thumbprint: ids.server.thumbprint } : undefined,
      onResumableSession: (s) => sessions.push(s),
    });
    await waitUntil(() => sessions.length > 0);
    dialed.socket.destroy();
    return dialed.resumed;
  };
  try {
    assert.equal(await dial(port), false);
    assert.equal(await dial(handOverPort, sessions[0]), true);
    sessions.length = 0;
    assert.equal(await dial(handOverPort), false);
    assert.equal(await dial(port, sessions[0]), true);
    await waitUntil(() => carriers.length === 4);
    assert.deepEqual(carriers, ['tcp:full', 'websocket:resumed', 'websocket:full', 'tcp:resumed']);
  } finally {
    handOver.close();
    await server.close();
  }
});

test('a connected Tentacle fetches fresh tickets beside its link, so it resumes after a key rotation and a restart', async () => {
  const ids = await testIdentities();
  const trusted = new Set([ids.tentacle.thumbprint]);
  const before = newTicketKeys();
  const after = newTicketKeys();
  const first = await serverWith(before, trusted);
  const comms = new TentacleComms({ identity: ids.tentacle, services: services({ echo }), sessionRefreshMs: 300 });
  const poller = comms.poll({ host: '127.0.0.1', port: first.port, carrier: 'tcp', trusted: () => [ids.server.thumbprint] });
  const drops: unknown[] = [];
  try {
    assert.deepEqual(await nextOutcome(poller), { resumed: false });
    poller.on('disconnected', (reason) => drops.push(reason));
    first.server.setTicketKeys(after); // tickets issued so far no longer open
    await new Promise((r) => setTimeout(r, 1500)); // several refresh periods
    assert.deepEqual(drops, [], 'the live link is not touched by the refreshes');
    assert.equal(first.server.links.size, 1);
    await first.server.close();

    const second = await serverWith(after, trusted, first.port);
    try {
      assert.deepEqual(await nextOutcome(poller), { resumed: true });
    } finally {
      await second.server.close();
    }
  } finally {
    await comms.close();
    if (first.server.links.size) await first.server.close();
  }
});

test('a fresh ticket is kept only from the pinned acceptor', async () => {
  const ids = await testIdentities();
  const { server, port } = await serverWith(newTicketKeys(), new Set());
  const fetch = (expected: Thumbprint[]) => fetchSessionTicket({ identity: ids.tentacle, host: '127.0.0.1', port, expected, timeoutMs: 5000 });
  try {
    assert.equal(await fetch([ids.stranger.thumbprint]), undefined);
    const fetched = await fetch([ids.server.thumbprint]);
    assert.equal(fetched?.thumbprint, ids.server.thumbprint);
    assert.ok(fetched.session.length > 0);
    assert.equal(server.links.size, 0, 'a ticket fetch is not a link');
  } finally {
    await server.close();
  }
});

async function waitUntil(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

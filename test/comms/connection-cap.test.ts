import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { ConnectionCap } from '../../src/comms/connection-cap.js';
import { dialSecure, type DialedSession } from '../../src/comms/dialer.js';
import { CommsServer } from '../../src/comms/index.js';
import { generateCertificate, type CertificateIdentity } from '../../src/pki/certificate.js';
import { connected, echo, startPollingTentacle, testIdentities } from './harness.js';

test('ConnectionCap admits up to its cap per key, releases once, and reports the first refusal of each episode', () => {
  const cap = new ConnectionCap(2);
  const a1 = cap.admit('a');
  const a2 = cap.admit('a');
  assert.ok(a1.admitted && a2.admitted);
  assert.deepEqual(cap.admit('a'), { admitted: false, firstRefusal: true });
  assert.deepEqual(cap.admit('a'), { admitted: false, firstRefusal: false });
  assert.ok(cap.admit('b').admitted, 'other keys are counted apart');
  a1.release();
  a1.release(); // twice is once
  assert.equal(cap.count('a'), 1);
  const again = cap.admit('a');
  assert.ok(again.admitted);
  assert.deepEqual(cap.admit('a'), { admitted: false, firstRefusal: true }, 'a new episode is logged again');
});

function capturingLogger() {
  const lines: { level: number; msg: string; thumbprint?: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

async function dial(port: number, identity: CertificateIdentity, server: CertificateIdentity): Promise<DialedSession> {
  return dialSecure({
    identity,
    host: '127.0.0.1',
    port,
    expected: [server.thumbprint],
    explainMismatch: () => 'unexpected server',
    carrier: 'tcp',
    handshakeTimeoutMs: 5000,
  });
}

test('one certificate is refused past maxConnectionsPerCertificate, told why, while other Tentacles keep working', async () => {
  const ids = await testIdentities();
  const greedy = await generateCertificate('Greedy Tentacle');
  const trusted = new Set([ids.tentacle.thumbprint, greedy.thumbprint]);
  const { logger, lines } = capturingLogger();
  const server = new CommsServer({ identity: ids.server, trust: (tp) => trusted.has(tp), limits: { maxConnectionsPerCertificate: 3 }, logger });
  const port = await server.listen(0, '127.0.0.1');
  const held: DialedSession[] = [];
  const { comms } = await startPollingTentacle(port, { echo });
  try {
    for (let i = 0; i < 3; i++) held.push(await dial(port, greedy, ids.server));
    for (let i = 0; i < 5; i++) {
      await assert.rejects(dial(port, greedy, ids.server), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'REEF_TOO_MANY_CONNECTIONS');
        assert.match(err.message, new RegExp(`thumbprint ${greedy.thumbprint} already holds 3 connections`));
        assert.match(err.message, /maxConnectionsPerCertificate/);
        return true;
      });
    }
    const refusals = lines.filter((l) => l.thumbprint === greedy.thumbprint && /refused/.test(l.msg));
    assert.equal(refusals.filter((l) => l.level === 40).length, 1, 'one warning per flood, the rest at debug');
    assert.equal(refusals.length, 5);

    // Another certificate is not affected: it connects and answers calls.
    await connected(server, ids.tentacle.thumbprint);
    assert.deepEqual(await server.call({ thumbprint: ids.tentacle.thumbprint }, 'echo', { hello: 1 }), { hello: 1 });

    // A closed connection frees its place.
    held.shift()!.socket.destroy();
    await waitUntil(async () => {
      try {
        held.push(await dial(port, greedy, ids.server));
        return true;
      } catch {
        return false;
      }
    });
  } finally {
    for (const session of held) session.socket.destroy();
    await comms.close();
    await server.close();
  }
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Simultaneous connections in the flood; the 2,000 with REEF_CAP_FLOOD=2000 (about 20 s of CPU, so not in npm test). */
const FLOOD = Number(process.env.REEF_CAP_FLOOD ?? 200);

test(`a flood of ${FLOOD} simultaneous connections from one certificate gets exactly the cap, and the server keeps serving`, async (t) => {
  const ids = await testIdentities();
  const greedy = await generateCertificate('Flooding Tentacle');
  const trusted = new Set([ids.tentacle.thumbprint, greedy.thumbprint]);
  const server = new CommsServer({ identity: ids.server, trust: async (tp) => trusted.has(tp), limits: { maxConnectionsPerCertificate: 8 } });
  const port = await server.listen(0, '127.0.0.1');
  const { comms } = await startPollingTentacle(port, { echo });
  const outcomes = await Promise.allSettled(Array.from({ length: FLOOD }, () => dial(port, greedy, ids.server)));
  try {
    const admitted = outcomes.filter((o) => o.status === 'fulfilled');
    const refusals = outcomes.flatMap((o) => (o.status === 'rejected' ? [String((o.reason as { code?: string }).code)] : []));
    const counts = Object.fromEntries([...new Set(refusals)].map((code) => [code, refusals.filter((c) => c === code).length]));
    t.diagnostic(`admitted ${admitted.length} of ${FLOOD}; refused: ${JSON.stringify(counts)}`);
    assert.equal(admitted.length, 8);
    assert.ok(counts.REEF_TOO_MANY_CONNECTIONS! > 0);
    // With thousands of handshakes at once in this one process, the flooding side's own
    // handshake deadline may pass first: that is the attacker's loss, not a way in.
    assert.deepEqual(Object.keys(counts).filter((code) => code !== 'REEF_TOO_MANY_CONNECTIONS' && code !== 'REEF_HANDSHAKE_TIMEOUT'), []);
    await connected(server, ids.tentacle.thumbprint);
    assert.equal(await server.call({ thumbprint: ids.tentacle.thumbprint }, 'echo', 'unharmed'), 'unharmed');
  } finally {
    for (const o of outcomes) if (o.status === 'fulfilled') o.value.socket.destroy();
    await comms.close();
    await server.close();
  }
});

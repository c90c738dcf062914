import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { startForwarder } from '../support/forwarder.js';
import { connected, echo, startPollingTentacle, startServer, testIdentities } from './harness.js';

const run = promisify(execFile);

test('a dead link is noticed by heartbeat on both sides, and the tentacle reconnects', async () => {
  const ids = await testIdentities();
  const limits = { heartbeatIntervalMs: 100, heartbeatTimeoutMs: 300 };
  const { server, port } = await startServer(new Set([ids.tentacle.thumbprint]), limits);
  const forwarder = await startForwarder({ targetPort: port });
  const { comms, poller } = await startPollingTentacle(forwarder.port, { echo }, { limits });
  try {
    // Both ends must be past the handshake before the link goes dark.
    const [link] = await Promise.all([connected(server, ids.tentacle.thumbprint), once(poller, 'connected')]);
    const tentacleNoticed = once(poller, 'disconnected');
    forwarder.pause(); // packets vanish; neither TCP stack sees a FIN or RST
    const reason = await link.closed;
    assert.equal((reason as Error & { code: string }).code, 'REEF_HEARTBEAT_TIMEOUT');
    const [tentacleReason] = await tentacleNoticed;
    assert.match(String((tentacleReason as Error)?.message), /heartbeat/);
    forwarder.resume();
    const again = await connected(server, ids.tentacle.thumbprint);
    assert.notEqual(again, link);
    assert.equal(await server.call({ thumbprint: ids.tentacle.thumbprint }, 'echo', 'back'), 'back');
  } finally {
    await comms.close();
    await forwarder.close();
    await server.close();
  }
});

test('after a server restart the tentacle reconnects quickly, resuming its TLS session', async () => {
  const ids = await testIdentities();
  const trusted = new Set([ids.tentacle.thumbprint]);
  let { server, port } = await startServer(trusted);
  const { comms, poller } = await startPollingTentacle(port, { echo });
  try {
    await connected(server, ids.tentacle.thumbprint);
    await server.close();
    // Same identity, same port: a restarted server process. Session tickets were
    // issued by the old process, so the first connection to the new one is a full
    // handshake; the second connection to the same process resumes.
    ({ server } = await startServer(trusted, {}, port));
    const first = await once(poller, 'connected');
    assert.equal(await server.call({ thumbprint: ids.tentacle.thumbprint }, 'echo', 1), 1);
    assert.equal(first[1], false);
    server.links.connections(ids.tentacle.thumbprint)[0]!.close();
    const [, resumed] = await once(poller, 'connected');
    assert.equal(resumed, true, 'the reconnect resumed the TLS session');
    assert.equal(await server.call({ thumbprint: ids.tentacle.thumbprint }, 'echo', 2), 2);
  } finally {
    await comms.close();
    await server.close();
  }
});

test('while its server restarts, a tentacle retries every 0.5-1.5 s instead of backing off', async () => {
  const ids = await testIdentities();
  const trusted = new Set([ids.tentacle.thumbprint]);
  let { server, port } = await startServer(trusted);
  const { comms, poller } = await startPollingTentacle(port, { echo });
  const waits: number[] = [];
  poller.on('failed', (_err, retryInMs) => waits.push(retryInMs));
  try {
    await connected(server, ids.tentacle.thumbprint);
    await server.close();
    // Four seconds of refusals: exponential backoff would be waiting up to 4 or 8 s by now.
    await new Promise((r) => setTimeout(r, 4000));
    ({ server } = await startServer(trusted, {}, port));
    const listening = Date.now();
    await once(poller, 'connected');
    const backAfter = Date.now() - listening;
    assert.ok(waits.length >= 2, `${waits.length} refused attempts in 4 s`);
    assert.ok(waits.every((ms) => ms >= 500 && ms <= 1500), `waits between attempts: ${waits.join(', ')} ms`);
    assert.ok(backAfter < 5000, `back ${backAfter} ms after the restarted server listened`);
    assert.equal(await server.call({ thumbprint: ids.tentacle.thumbprint }, 'echo', 3), 3);
  } finally {
    await comms.close();
    await server.close();
  }
});

test('curl gets the friendly page from the comms port with security headers', async () => {
  const { server, port } = await startServer(new Set());
  try {
    const { stdout } = await run('curl', ['-k', '-sS', '-i', '--max-time', '10', `https://127.0.0.1:${port}/`]);
    assert.match(stdout, /^HTTP\/1\.1 200/);
    assert.match(stdout, /content-security-policy: default-src 'none'/i);
    assert.match(stdout, /x-content-type-options: nosniff/i);
    assert.match(stdout, /Reef comms listener/);
    // A browser-like client with a client certificate but no reef-comms ALPN also gets the page.
    const { stdout: http2Try } = await run('curl', ['-k', '-sS', '--http2', '--max-time', '10', `https://127.0.0.1:${port}/anything`]);
    assert.match(http2Try, /Reef comms listener/);
  } finally {
    await server.close();
  }
});

test('garbage bytes, a stalled handshake and a half-sent ClientHello disturb nothing', async () => {
  const ids = await testIdentities();
  const { server, port } = await startServer(new Set([ids.tentacle.thumbprint]), { handshakeTimeoutMs: 500 });
  const { comms } = await startPollingTentacle(port, { echo });
  try {
    await connected(server, ids.tentacle.thumbprint);
    const garbage = net.connect(port, '127.0.0.1');
    garbage.on('error', () => {});
    garbage.write(Buffer.from('\x00\xff garbage that is not TLS \r\n\r\n'));
    const stalled = net.connect(port, '127.0.0.1'); // connects, never says a word
    stalled.on('error', () => {});
    const half = net.connect(port, '127.0.0.1');
    half.on('error', () => {});
    half.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])); // a ClientHello header, then nothing
    await Promise.all([once(garbage, 'close'), once(stalled, 'close'), once(half, 'close')]);
    assert.equal(await server.call({ thumbprint: ids.tentacle.thumbprint }, 'echo', 'unharmed'), 'unharmed');
    assert.equal(server.links.size, 1);
  } finally {
    await comms.close();
    await server.close();
  }
});

test('a TLS client without a certificate asking for reef-comms is told why it is refused', async () => {
  const { server, port } = await startServer(new Set());
  try {
    const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['reef-comms'] });
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => {});
    await once(socket, 'close');
    assert.match(Buffer.concat(chunks).toString(), /REEF_NO_CLIENT_CERTIFICATE/);
  } finally {
    await server.close();
  }
});

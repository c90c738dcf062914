import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { CommsServer, TentacleComms } from '../../src/comms/index.js';
import { baseTlsOptions } from '../../src/comms/tls-config.js';
import { createFrontDoor, type FrontDoor } from '../../src/comms/front-door/front-door.js';
import { remoteAddressOf } from '../../src/comms/front-door/remote-address.js';
import { connectTcp } from '../../src/comms/carriers/tcp.js';
import { echo, services, testIdentities } from './harness.js';

const run = promisify(execFile);

/** The server's HTTPS port as runtime.ts builds it: a front door before comms and a portal. */
async function startFrontDoor(proxyProtocol = false) {
  const ids = await testIdentities();
  const comms = new CommsServer({ identity: ids.server, trust: (tp) => tp === ids.tentacle.thumbprint });
  const portal = https.createServer({ ...baseTlsOptions(ids.server), ALPNProtocols: ['http/1.1'] }, (req, res) => {
    res.end(`portal sees ${remoteAddressOf(req.socket)}`);
  });
  const door: FrontDoor = createFrontDoor({
    pollingHostnames: ['Polling.Reef.Test'],
    proxyProtocol,
    limits: { preambleTimeoutMs: 1000 },
    logger: (await import('../../src/logging.js')).silentLogger,
    toComms: (socket, carrier) => comms.accept(socket, carrier),
    toPortal: (socket) => portal.emit('connection', socket),
  });
  const port = await door.listen(0, '127.0.0.1');
  return {
    comms,
    port,
    async close() {
      await door.close();
      portal.closeAllConnections();
      await comms.close();
    },
  };
}

function tentacleVia(port: number, servername: string, trusted: string[]) {
  return testIdentities().then((ids) => {
    const tentacle = new TentacleComms({ identity: ids.tentacle, services: services({ echo }) });
    const poller = tentacle.poll({
      host: servername,
      port,
      servername,
      carrier: 'tentacle-side',
      transport: () => connectTcp(servername, port, { resolveTo: '127.0.0.1', timeoutMs: 5000 }),
      trusted: () => trusted,
    });
    return { tentacle, poller };
  });
}

describe('the front door on the HTTPS port', () => {
  let door: Awaited<ReturnType<typeof startFrontDoor>>;
  before(async () => {
    door = await startFrontDoor();
  });
  after(() => door.close());

  test('a polling hostname (SNI, any case) goes to comms; TLS ends in the comms listener, pinned', async () => {
    const ids = await testIdentities();
    const { tentacle, poller } = await tentacleVia(door.port, 'polling.reef.test', [ids.server.thumbprint]);
    try {
      await once(poller, 'connected');
      const link = door.comms.links.pick(ids.tentacle.thumbprint)!;
      assert.equal(link.peer.carrier, 'sni');
      assert.equal(await door.comms.call({ thumbprint: ids.tentacle.thumbprint }, 'echo', 'via 443'), 'via 443');
    } finally {
      await tentacle.close();
    }
  });

  test('ALPN reef-comms on any other hostname goes to comms too', async () => {
    const ids = await testIdentities();
    const { tentacle, poller } = await tentacleVia(door.port, 'reef.test', [ids.server.thumbprint]);
    try {
      await once(poller, 'connected');
      assert.equal(door.comms.links.pick(ids.tentacle.thumbprint)!.peer.carrier, 'alpn');
    } finally {
      await tentacle.close();
    }
  });

  test('curl on the polling hostname gets the friendly page; another name (or h2) reaches the portal', async () => {
    const resolve = (name: string) => ['--resolve', `${name}:${door.port}:127.0.0.1`];
    const friendly = await run('curl', ['-k', '-sS', '--max-time', '10', ...resolve('polling.reef.test'), `https://polling.reef.test:${door.port}/`]);
    assert.match(friendly.stdout, /Reef comms listener/);
    const portal = await run('curl', ['-k', '-sS', '--max-time', '10', ...resolve('www.reef.test'), `https://www.reef.test:${door.port}/`]);
    assert.match(portal.stdout, /^portal sees 127\.0\.0\.1:\d+/);
    const h2 = await run('curl', ['-k', '-sS', '--http2', '--max-time', '10', `https://127.0.0.1:${door.port}/`]);
    assert.match(h2.stdout, /^portal sees/);
  });

  test('an unknown ALPN protocol never reaches comms', async () => {
    const socket = tls.connect({ port: door.port, host: '127.0.0.1', servername: 'x.reef.test', rejectUnauthorized: false, ALPNProtocols: ['foo', 'http/1.1'] });
    await once(socket, 'secureConnect');
    assert.equal(socket.alpnProtocol, 'http/1.1');
    socket.end('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    let text = '';
    for await (const chunk of socket) text += chunk;
    assert.match(text, /portal sees/);
  });

  test('a ClientHello in records of version 03 00 (nmap, RFC 5246 E.1) is routed, not dropped', async () => {
    // A relay rewrites the record version of the client's first record to 03 00; the
    // handshake transcript covers messages, not record headers, so TLS still completes.
    const relay = net.createServer({ allowHalfOpen: true }, (inbound) => {
      const outbound = net.connect(door.port, '127.0.0.1');
      inbound.on('end', () => outbound.end());
      let first = true;
      inbound.on('data', (chunk: Buffer) => {
        if (first && chunk.length >= 3) {
          first = false;
          chunk = Buffer.from(chunk);
          assert.equal(chunk[0], 22);
          chunk[2] = 0;
        }
        outbound.write(chunk);
      });
      outbound.pipe(inbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
      inbound.on('close', () => outbound.destroy());
    });
    relay.listen(0, '127.0.0.1');
    await once(relay, 'listening');
    try {
      const port = (relay.address() as net.AddressInfo).port;
      const socket = tls.connect({ port, host: '127.0.0.1', servername: 'www.reef.test', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
      await once(socket, 'secureConnect');
      socket.end('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
      let text = '';
      for await (const chunk of socket) text += chunk;
      assert.match(text, /portal sees/);
    } finally {
      relay.close();
    }
  });

  test('plain HTTP, a truncated ClientHello and a one-byte-a-second client disturb nothing', async () => {
    const ids = await testIdentities();
    const { tentacle, poller } = await tentacleVia(door.port, 'polling.reef.test', [ids.server.thumbprint]);
    try {
      await once(poller, 'connected');
      const plain = net.connect(door.port, '127.0.0.1');
      plain.end('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      let answer = '';
      plain.on('data', (d) => (answer += d));
      const truncated = net.connect(door.port, '127.0.0.1');
      truncated.on('error', () => {}).resume();
      truncated.end(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]));
      const slow = net.connect(door.port, '127.0.0.1');
      slow.on('error', () => {}).resume();
      const drip = setInterval(() => slow.write(Buffer.from([0x16])), 300);
      const allClosed = Promise.all([once(plain, 'close'), once(truncated, 'close'), once(slow, 'close')]);
      // While those misbehave, a tentacle call and a portal request go through.
      assert.equal(await door.comms.call({ thumbprint: ids.tentacle.thumbprint }, 'echo', 'unharmed'), 'unharmed');
      const portal = await run('curl', ['-k', '-sS', '--max-time', '10', `https://127.0.0.1:${door.port}/`]);
      assert.match(portal.stdout, /portal sees/);
      await allClosed;
      clearInterval(drip);
      assert.match(answer, /^HTTP\/1\.1 400/);
      assert.match(answer, /speaks HTTPS/);
      assert.equal(door.comms.links.connections(ids.tentacle.thumbprint).length, 1);
    } finally {
      await tentacle.close();
    }
  });
});

test('with PROXY protocol on, the announced client address is what the portal sees', async () => {
  const door = await startFrontDoor(true);
  try {
    const raw = net.connect(door.port, '127.0.0.1');
    await once(raw, 'connect');
    raw.write('PROXY TCP4 203.0.113.7 127.0.0.1 51000 443\r\n');
    const socket = tls.connect({ socket: raw, servername: 'www.reef.test', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    await once(socket, 'secureConnect');
    socket.end('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    let text = '';
    for await (const chunk of socket) text += chunk;
    assert.match(text, /portal sees 203\.0\.113\.7:51000/);
    // Without the header, the connection is refused rather than misattributed.
    const bare = tls.connect({ port: door.port, host: '127.0.0.1', rejectUnauthorized: false });
    const [err] = await Promise.race([once(bare, 'error'), once(bare, 'close').then(() => [new Error('closed')])]);
    assert.ok(err);
    bare.destroy();
  } finally {
    await door.close();
  }
});

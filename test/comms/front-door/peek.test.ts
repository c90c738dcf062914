import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { isReefError, type ErrorCode } from '../../../src/errors.js';
import { readPreamble, type Preamble, type PreambleOptions } from '../../../src/comms/front-door/peek.js';
import { generateCertificate, type CertificateIdentity } from '../../../src/pki/certificate.js';

// `openssl s_client -servername x -alpn h2` (OpenSSL 3.0), captured once.
const HELLO = Buffer.from(
  '16030101370100013303035b30ab913ffd019fb79232c3e3866d5823c1c5849186161d78b16c880b5def0d20e21496dfc1e1db8d39bbe39911a840de279ffc506b16c3165078d09f79914c95003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000ac00000006000400000178000b000403000102000a00160014001d0017001e0019001801000101010201030104002300000010000500030268320016000000170000000d002a0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602002b0009080304030303020301002d00020101003300260024001d002038553c5a91cee42b1f6b75ca253eaebbe9f92dad8250e4b6478dcc2246f32f0d',
  'hex',
);
const PROXY_V1 = Buffer.from('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n');
const PROXY_V2 = Buffer.from('0d0a0d0a000d0a515549540a' + '2111000c' + 'c0a80001c0a8000bdc0401bb', 'hex');

interface Accepted {
  socket: net.Socket;
  preamble: Promise<Preamble>;
  /** Listener counts before readPreamble, to check none of its own remain. */
  listenersBefore: Record<string, number>;
}

const EVENTS = ['readable', 'data', 'end', 'close', 'error'] as const;

function listenerCounts(socket: net.Socket): Record<string, number> {
  return Object.fromEntries(EVENTS.map((event) => [event, socket.listenerCount(event)]));
}

/** A TCP server on port 0 that runs readPreamble on each connection, as the front door does. */
async function startPeekServer(options: PreambleOptions, serverOptions: net.ServerOpts = { pauseOnConnect: true }) {
  const waiting: ((accepted: Accepted) => void)[] = [];
  const arrived: Accepted[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer(serverOptions, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const listenersBefore = listenerCounts(socket);
    const preamble = readPreamble(socket, options);
    preamble.catch(() => socket.destroy());
    const accepted = { socket, preamble, listenersBefore };
    const waiter = waiting.shift();
    if (waiter) waiter(accepted);
    else arrived.push(accepted);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    accept: () => new Promise<Accepted>((resolve) => (arrived.length ? resolve(arrived.shift()!) : waiting.push(resolve))),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

async function dial(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

async function expectReefError(promise: Promise<unknown>, code: ErrorCode): Promise<Error> {
  const err = await promise.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(isReefError(err, code), `expected ${code}, got ${String(err)}`);
  return err as Error;
}

/** Everything the socket yields from now until it ends. */
async function drain(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await once(socket, 'end');
  return Buffer.concat(chunks);
}

describe('readPreamble on real sockets', () => {
  test('PROXY v1 and the ClientHello in one write', async () => {
    const server = await startPeekServer({ proxyProtocol: true, timeoutMs: 5000 });
    try {
      const client = await dial(server.port);
      client.write(Buffer.concat([PROXY_V1, HELLO]));
      const { preamble } = await server.accept();
      const result = await preamble;
      assert.deepEqual(result.proxy, {
        kind: 'header',
        version: 1,
        command: 'PROXY',
        source: { address: '192.168.0.1', port: 56324 },
        destination: { address: '192.168.0.11', port: 443 },
        bytes: PROXY_V1.length,
      });
      assert.deepEqual(result.hello, { kind: 'hello', serverName: 'x', alpn: ['h2'], bytes: HELLO.length });
      assert.deepEqual(result.buffered, HELLO);
      client.destroy();
    } finally {
      await server.close();
    }
  });

  test('PROXY v2 and the ClientHello byte by byte', async () => {
    const server = await startPeekServer({ proxyProtocol: true, timeoutMs: 20_000 });
    try {
      const client = await dial(server.port);
      const accepted = server.accept();
      const bytes = Buffer.concat([PROXY_V2, HELLO]);
      for (let i = 0; i < bytes.length; i++) {
        client.write(bytes.subarray(i, i + 1));
        if (i % 4 === 0) await sleep(1);
      }
      const result = await (await accepted).preamble;
      assert.equal(result.proxy?.version, 2);
      assert.deepEqual(result.proxy?.source, { address: '192.168.0.1', port: 56324 });
      assert.equal(result.hello.kind, 'hello');
      assert.deepEqual(result.buffered, HELLO);
      client.destroy();
    } finally {
      await server.close();
    }
  });

  test('a client trickling one byte every 100 ms is cut off at timeoutMs overall', async () => {
    const server = await startPeekServer({ proxyProtocol: false, timeoutMs: 500 });
    try {
      const client = await dial(server.port);
      const accepted = server.accept();
      const started = Date.now();
      let stop = false;
      const trickle = (async () => {
        for (let i = 0; i < HELLO.length && !stop && !client.destroyed; i++) {
          client.write(HELLO.subarray(i, i + 1));
          await sleep(100);
        }
      })();
      const err = await expectReefError((await accepted).preamble, 'REEF_FRONT_DOOR_TIMEOUT');
      const elapsed = Date.now() - started;
      stop = true;
      await trickle;
      assert.ok(elapsed >= 450 && elapsed < 2000, `cut off after ${elapsed} ms`);
      assert.match(err.message, /within 500 ms \(\d+ bytes received\)/);
      client.destroy();
    } finally {
      await server.close();
    }
  });

  test('a client that closes before the hello is complete', async () => {
    const server = await startPeekServer({ proxyProtocol: false, timeoutMs: 5000 });
    try {
      const half = await dial(server.port);
      half.end(HELLO.subarray(0, 100));
      const err = await expectReefError((await server.accept()).preamble, 'REEF_CONNECTION_LOST');
      assert.match(err.message, /before sending a complete TLS ClientHello \(100 bytes received\)/);

      const silent = await dial(server.port);
      silent.destroy();
      await expectReefError((await server.accept()).preamble, 'REEF_CONNECTION_LOST');
    } finally {
      await server.close();
    }
  });

  test('a client that closes inside the PROXY header', async () => {
    const server = await startPeekServer({ proxyProtocol: true, timeoutMs: 5000 });
    try {
      const client = await dial(server.port);
      client.end(PROXY_V1.subarray(0, 10));
      const err = await expectReefError((await server.accept()).preamble, 'REEF_CONNECTION_LOST');
      assert.match(err.message, /PROXY protocol header/);
    } finally {
      await server.close();
    }
  });

  test('invalid: no PROXY header when one is required, or a broken ClientHello', async () => {
    const server = await startPeekServer({ proxyProtocol: true, timeoutMs: 5000 });
    try {
      const bare = await dial(server.port);
      bare.write(HELLO);
      const err = await expectReefError((await server.accept()).preamble, 'REEF_FRONT_DOOR_INVALID');
      assert.match(err.message, /PROXY protocol header/);
      bare.destroy();

      const broken = await dial(server.port);
      broken.write(Buffer.concat([PROXY_V1, Buffer.from('16030100040200', 'hex')]));
      const err2 = await expectReefError((await server.accept()).preamble, 'REEF_FRONT_DOOR_INVALID');
      assert.match(err2.message, /handshake type 2/);
      broken.destroy();
    } finally {
      await server.close();
    }
  });

  test('plain HTTP on the HTTPS port resolves as not-tls with its bytes buffered', async () => {
    const server = await startPeekServer({ proxyProtocol: false, timeoutMs: 5000 });
    try {
      const client = await dial(server.port);
      const request = Buffer.from('GET / HTTP/1.1\r\nHost: reef.example\r\n\r\n');
      client.write(request);
      const result = await (await server.accept()).preamble;
      assert.equal(result.hello.kind, 'not-tls');
      assert.equal(result.proxy, undefined);
      assert.ok(request.subarray(0, result.buffered.length).equals(result.buffered));
      assert.ok(result.buffered.length > 0);
      client.destroy();
    } finally {
      await server.close();
    }
  });

  for (const pauseOnConnect of [true, false]) {
    test(`buffered plus later data reproduce the bytes after the PROXY header exactly (pauseOnConnect ${pauseOnConnect})`, async () => {
      const server = await startPeekServer({ proxyProtocol: true, timeoutMs: 5000 }, { pauseOnConnect });
      try {
        const client = await dial(server.port);
        const later = Buffer.alloc(100_000);
        for (let i = 0; i < later.length; i++) later[i] = (i * 31) & 0xff;
        const early = Buffer.from('early bytes after the hello');
        client.write(Buffer.concat([PROXY_V2, HELLO.subarray(0, 50)]));
        await sleep(20);
        client.write(Buffer.concat([HELLO.subarray(50), early]));
        const { socket, preamble, listenersBefore } = await server.accept();
        const result = await preamble;
        assert.equal(result.hello.kind, 'hello');
        // Still paused, and none of readPreamble's listeners left behind.
        assert.notEqual(socket.readableFlowing, true);
        assert.deepEqual(listenerCounts(socket), listenersBefore);
        await sleep(20); // bytes arriving now must wait in the socket, not be lost
        client.end(later);
        socket.unshift(result.buffered);
        const rest = await drain(socket);
        assert.ok(Buffer.concat([HELLO, early, later]).equals(rest), 'the stream after the PROXY header is intact');
      } finally {
        await server.close();
      }
    });
  }
});

describe('readPreamble in front of a real TLS server', () => {
  let identity: CertificateIdentity;
  before(async () => {
    identity = await generateCertificate('front-door.test');
  });

  const servers: { close(): Promise<void> }[] = [];
  after(async () => {
    await Promise.all(servers.map((server) => server.close()));
  });

  /** The front door's job in miniature: peek, put back, hand the socket to a TLS server that echoes. */
  async function startTlsBehindPeek(proxyProtocol: boolean) {
    const tlsServer = tls.createServer({ cert: identity.certPem, key: identity.keyPem, ALPNProtocols: ['reef-comms', 'http/1.1'] }, (secure) => {
      secure.on('error', () => {});
      secure.end(`alpn=${secure.alpnProtocol} sni=${(secure as tls.TLSSocket & { servername?: string }).servername}`);
    });
    const seen: Preamble[] = [];
    const front = net.createServer({ pauseOnConnect: true }, (socket) => {
      socket.on('error', () => socket.destroy());
      readPreamble(socket, { proxyProtocol, timeoutMs: 5000 }).then(
        (preamble) => {
          seen.push(preamble);
          socket.unshift(preamble.buffered);
          tlsServer.emit('connection', socket);
        },
        () => socket.destroy(),
      );
    });
    front.listen(0, '127.0.0.1');
    await once(front, 'listening');
    const handle = {
      port: (front.address() as net.AddressInfo).port,
      seen,
      close: async () => {
        front.close();
        await once(front, 'close');
      },
    };
    servers.push(handle);
    return handle;
  }

  async function handshake(options: tls.ConnectionOptions): Promise<string> {
    const secure = tls.connect({ rejectUnauthorized: false, ...options });
    const chunks: Buffer[] = [];
    secure.on('data', (chunk: Buffer) => chunks.push(chunk));
    await once(secure, 'end');
    secure.destroy();
    return Buffer.concat(chunks).toString();
  }

  test('the TLS handshake completes on the socket after the hello was read and put back', async () => {
    const front = await startTlsBehindPeek(false);
    const answer = await handshake({ host: '127.0.0.1', port: front.port, servername: 'polling.example.com', ALPNProtocols: ['reef-comms', 'http/1.1'] });
    assert.equal(answer, 'alpn=reef-comms sni=polling.example.com');
    const hello = front.seen[0]!.hello;
    assert.deepEqual(hello.kind === 'hello' && { serverName: hello.serverName, alpn: hello.alpn }, { serverName: 'polling.example.com', alpn: ['reef-comms', 'http/1.1'] });
  });

  test('with a PROXY header sent first over the same connection', async () => {
    const front = await startTlsBehindPeek(true);
    const raw = await dial(front.port);
    raw.write('PROXY TCP6 2001:db8::7 2001:db8::1 40000 443\r\n');
    const answer = await handshake({ socket: raw, servername: 'portal.example.com', ALPNProtocols: ['http/1.1'] });
    assert.equal(answer, 'alpn=http/1.1 sni=portal.example.com');
    assert.deepEqual(front.seen[0]!.proxy?.source, { address: '2001:db8::7', port: 40000 });
  });
});

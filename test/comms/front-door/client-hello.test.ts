import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import net from 'node:net';
import { before, describe, test } from 'node:test';
import tls from 'node:tls';
import fc from 'fast-check';
import { parseClientHello, type ClientHelloResult } from '../../../src/comms/front-door/client-hello.js';

// ---------------------------------------------------------------------------------------
// Literal bytes: `openssl s_client -servername x -alpn h2` (OpenSSL 3.0), captured once.
const OPENSSL_HELLO = Buffer.from(
  '16030101370100013303035b30ab913ffd019fb79232c3e3866d5823c1c5849186161d78b16c880b5def0d20e21496dfc1e1db8d39bbe39911a840de279ffc506b16c3165078d09f79914c95003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000ac00000006000400000178000b000403000102000a00160014001d0017001e0019001801000101010201030104002300000010000500030268320016000000170000000d002a0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602002b0009080304030303020301002d00020101003300260024001d002038553c5a91cee42b1f6b75ca253eaebbe9f92dad8250e4b6478dcc2246f32f0d',
  'hex',
);

/** A TLS 1.0-style ClientHello with no extensions at all: version, random, empty session, one suite, null compression. */
const MINIMAL_HELLO = Buffer.from('16030100' + '2d' + '01000029' + '0301' + '00'.repeat(32) + '00' + '0002002f' + '0100', 'hex');

// ---------------------------------------------------------------------------------------
// A small encoder for hellos built in tests.

interface HelloSpec {
  serverName?: string | Buffer;
  alpn?: (string | Buffer)[];
  sessionId?: Buffer;
  suites?: number;
  extra?: [number, Buffer][];
  /** Sizes of all records but the last; the handshake message is cut into records at these. */
  recordSizes?: number[];
  /** Omit the extensions block entirely. */
  noExtensions?: boolean;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
function u8(n: number): Buffer {
  return Buffer.from([n]);
}
function ext(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), u16(data.length), data]);
}
function sniExtension(name: string | Buffer): Buffer {
  const bytes = typeof name === 'string' ? Buffer.from(name, 'latin1') : name;
  const entry = Buffer.concat([u8(0), u16(bytes.length), bytes]);
  return ext(0, Buffer.concat([u16(entry.length), entry]));
}
function alpnExtension(names: (string | Buffer)[]): Buffer {
  const list = Buffer.concat(names.map((n) => (typeof n === 'string' ? Buffer.from(n, 'latin1') : n)).map((b) => Buffer.concat([u8(b.length), b])));
  return ext(16, Buffer.concat([u16(list.length), list]));
}

function handshakeMessage(spec: HelloSpec): Buffer {
  const sessionId = spec.sessionId ?? Buffer.alloc(32, 7);
  const suites = Buffer.alloc(2 * (spec.suites ?? 3), 0x13);
  const extensions = [
    ...(spec.serverName !== undefined ? [sniExtension(spec.serverName)] : []),
    ext(10, Buffer.from('0004001d0017', 'hex')),
    ...(spec.alpn !== undefined ? [alpnExtension(spec.alpn)] : []),
    ...(spec.extra ?? []).map(([type, data]) => ext(type, data)),
  ];
  const extBlock = Buffer.concat(extensions);
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 0xaa),
    u8(sessionId.length),
    sessionId,
    u16(suites.length),
    suites,
    Buffer.from([1, 0]),
    ...(spec.noExtensions ? [] : [u16(extBlock.length), extBlock]),
  ]);
  const header = Buffer.from([1, 0, 0, 0]);
  header.writeUIntBE(body.length, 1, 3);
  return Buffer.concat([header, body]);
}

/** Wraps a handshake message in records, cut at the given sizes (the last record takes the rest). */
function inRecords(message: Buffer, sizes: number[] = []): Buffer {
  const records: Buffer[] = [];
  let at = 0;
  for (const size of [...sizes, message.length]) {
    if (at >= message.length) break;
    const part = message.subarray(at, Math.min(message.length, at + size));
    records.push(Buffer.concat([Buffer.from([22, 3, 1]), u16(part.length), part]));
    at += part.length;
  }
  return Buffer.concat(records);
}

function encodeHello(spec: HelloSpec): Buffer {
  return inRecords(handshakeMessage(spec), spec.recordSizes);
}

/** Handshake message of a (single- or multi-record) hello, for re-chunking. */
function messageOf(hello: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < hello.length; ) {
    const length = hello.readUInt16BE(at + 3);
    parts.push(hello.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
  return Buffer.concat(parts);
}

function expectHello(result: ClientHelloResult, serverName: string | null, alpn: string[], bytes: number): void {
  assert.deepEqual(result, { kind: 'hello', serverName, alpn, bytes });
}

function expectInvalid(result: ClientHelloResult, pattern: RegExp): void {
  assert.equal(result.kind, 'invalid', JSON.stringify(result));
  assert.match((result as { reason: string }).reason, pattern);
}

/** Every proper prefix is need-more; the whole is the expected answer. */
function checkAllPrefixes(bytes: Buffer, serverName: string | null, alpn: string[]): void {
  for (let cut = 0; cut < bytes.length; cut++) {
    const result = parseClientHello(bytes.subarray(0, cut));
    assert.equal(result.kind, 'need-more', `prefix of ${cut}/${bytes.length} bytes: ${JSON.stringify(result)}`);
  }
  expectHello(parseClientHello(bytes), serverName, alpn, bytes.length);
}

// ---------------------------------------------------------------------------------------
// Capturing real ClientHellos on a local collector.

async function withCollector(dial: (port: number) => Promise<unknown> | void): Promise<Buffer> {
  let resolveBytes!: (b: Buffer) => void;
  const captured = new Promise<Buffer>((resolve) => (resolveBytes = resolve));
  const server = net.createServer((socket) => {
    let bytes = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      bytes = Buffer.concat([bytes, chunk]);
      // These clients send the hello in one record; collect that record whole.
      if (bytes.length >= 5 && bytes.length >= 5 + bytes.readUInt16BE(3)) {
        resolveBytes(bytes);
        socket.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as net.AddressInfo).port;
    const dialled = Promise.resolve(dial(port)).catch(() => {});
    const bytes = await captured;
    await dialled;
    return bytes;
  } finally {
    server.close();
  }
}

function nodeHello(options: tls.ConnectionOptions): Promise<Buffer> {
  return withCollector(
    (port) =>
      new Promise<void>((resolve) => {
        const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
        socket.on('error', () => resolve());
        socket.on('close', () => resolve());
      }),
  );
}

function runTool(command: string, args: string[]): Promise<void> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { timeout: 10_000 }, () => resolve());
    child.stdin?.end();
  });
}

function hasTool(command: string, args: string[]): boolean {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('parseClientHello: real clients', () => {
  const captured: Record<string, Buffer> = {};
  const haveCurl = hasTool('curl', ['--version']);
  const haveOpenssl = hasTool('openssl', ['version']);

  before(async () => {
    captured.node = await nodeHello({ servername: 'polling.example.com', ALPNProtocols: ['reef-comms', 'http/1.1'] });
    captured.nodeByIp = await nodeHello({});
    if (haveCurl) {
      captured.curl = await withCollector((port) =>
        runTool('curl', ['-sk', '--max-time', '5', '--resolve', `polling.example.com:${port}:127.0.0.1`, `https://polling.example.com:${port}/`]),
      );
    }
    if (haveOpenssl) {
      captured.openssl = await withCollector((port) => runTool('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'x', '-alpn', 'h2']));
    }
  });

  test('node tls.connect with SNI and ALPN, at every byte boundary', () => {
    checkAllPrefixes(captured.node!, 'polling.example.com', ['reef-comms', 'http/1.1']);
  });

  test('node tls.connect to an IP address sends no SNI', () => {
    checkAllPrefixes(captured.nodeByIp!, null, []);
  });

  test('curl, at every byte boundary', { skip: !haveCurl && 'curl is not installed' }, () => {
    const result = parseClientHello(captured.curl!);
    assert.equal(result.kind, 'hello');
    assert.equal((result as { serverName: string }).serverName, 'polling.example.com');
    const alpn = (result as { alpn: string[] }).alpn;
    assert.ok(alpn.includes('http/1.1'), `curl offers http/1.1: ${alpn.join(',')}`);
    checkAllPrefixes(captured.curl!, 'polling.example.com', alpn);
  });

  test('openssl s_client -servername x -alpn h2, at every byte boundary', { skip: !haveOpenssl && 'openssl is not installed' }, () => {
    checkAllPrefixes(captured.openssl!, 'x', ['h2']);
  });

  test('each real hello re-chunked into two records at every cut, and three records', () => {
    for (const [name, hello] of Object.entries(captured)) {
      const message = messageOf(hello);
      const expected = parseClientHello(hello);
      assert.equal(expected.kind, 'hello', name);
      const { serverName, alpn } = expected as { serverName: string | null; alpn: string[] };
      for (let cut = 1; cut < message.length; cut++) {
        const twoRecords = inRecords(message, [cut]);
        expectHello(parseClientHello(twoRecords), serverName, alpn, twoRecords.length);
      }
      const threeRecords = inRecords(message, [3, Math.floor(message.length / 2)]);
      checkAllPrefixes(threeRecords, serverName, alpn);
    }
  });

  test('the ClientHello is complete before any trailing bytes, which are not counted', () => {
    const hello = captured.node!;
    const withTrail = Buffer.concat([hello, Buffer.from('170303000501020304', 'hex')]);
    expectHello(parseClientHello(withTrail), 'polling.example.com', ['reef-comms', 'http/1.1'], hello.length);
  });
});

describe('parseClientHello: literal bytes', () => {
  test('openssl capture: SNI x, ALPN h2, every prefix need-more', () => {
    checkAllPrefixes(OPENSSL_HELLO, 'x', ['h2']);
  });

  test('a hello without any extensions', () => {
    checkAllPrefixes(MINIMAL_HELLO, null, []);
  });

  test('not TLS: HTTP, SSLv2-compatible hello, other record types, other major versions', () => {
    for (const text of ['GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'PRI * HTTP/2.0\r\n', 'SSH-2.0-OpenSSH_9.2\r\n']) {
      assert.equal(parseClientHello(Buffer.from(text)).kind, 'not-tls', text);
    }
    // SSLv2-compatible CLIENT-HELLO (2-byte header with the high bit set).
    assert.equal(parseClientHello(Buffer.from('802e0103010015000000100000030000', 'hex')).kind, 'not-tls');
    assert.equal(parseClientHello(Buffer.from('1503010002022800', 'hex')).kind, 'not-tls'); // alert
    assert.equal(parseClientHello(Buffer.from('17', 'hex')).kind, 'not-tls'); // application data
    assert.equal(parseClientHello(Buffer.from('1602', 'hex')).kind, 'not-tls');
  });

  test('any record version {03,xx} is accepted in the ClientHello records (RFC 5246 E.1): nmap sends 03 00', () => {
    for (const minor of [0, 1, 2, 3, 4, 0xff]) {
      const hello = Buffer.from(MINIMAL_HELLO);
      hello[2] = minor;
      checkAllPrefixes(hello, null, []);
    }
    // Each record of a hello split in several may carry its own.
    const split = encodeHello({ serverName: 'portal.example', alpn: ['http/1.1'], recordSizes: [10, 20] });
    for (let at = 0, minor = 0; at < split.length; at += 5 + split.readUInt16BE(at + 3), minor++) split[at + 2] = minor;
    checkAllPrefixes(split, 'portal.example', ['http/1.1']);
  });

  test('empty input and a lone handshake byte need more', () => {
    assert.equal(parseClientHello(Buffer.alloc(0)).kind, 'need-more');
    assert.equal(parseClientHello(Buffer.from([22])).kind, 'need-more');
    assert.equal(parseClientHello(Buffer.from([22, 3])).kind, 'need-more');
  });

  test('bad record headers are invalid as soon as they are seen', () => {
    expectInvalid(parseClientHello(Buffer.from('1603010000', 'hex')), /empty handshake record/);
    expectInvalid(parseClientHello(Buffer.from('160301ffff', 'hex')), /record length 65535/);
  });

  test('handshake type other than ClientHello is invalid, even on its first byte', () => {
    expectInvalid(parseClientHello(Buffer.from('16030100040200', 'hex')), /handshake type 2/);
    expectInvalid(parseClientHello(Buffer.from('160301000402000000', 'hex')), /handshake type 2/);
  });

  test('a record of another type in the middle of the hello is invalid', () => {
    const message = handshakeMessage({ serverName: 'a.example' });
    const first = inRecords(message.subarray(0, 20));
    const alert = Buffer.from('15030100020228', 'hex');
    expectInvalid(parseClientHello(Buffer.concat([first, alert])), /interrupted by a record of content type 21/);
    const badVersion = Buffer.concat([first, Buffer.from('160200', 'hex')]);
    expectInvalid(parseClientHello(badVersion), /major 2/);
  });

  test('oversized: a declared length past maxBytes is invalid before the bytes arrive', () => {
    const header = Buffer.from('160301400001003ffc', 'hex'); // record 16384, hello 16380
    expectInvalid(parseClientHello(header), /ClientHello larger than 16384 bytes/);
    expectInvalid(parseClientHello(OPENSSL_HELLO, OPENSSL_HELLO.length - 1), /ClientHello larger than 315 bytes/);
    expectHello(parseClientHello(OPENSSL_HELLO, OPENSSL_HELLO.length), 'x', ['h2'], OPENSSL_HELLO.length);
    // Many tiny records: the record headers count too.
    const tiny = inRecords(handshakeMessage({ serverName: 'a.example' }), Array(200).fill(1));
    expectInvalid(parseClientHello(tiny, 600), /ClientHello larger than 600/);
  });

  test('impossible lengths inside the body are invalid even while truncated', () => {
    const good = handshakeMessage({ serverName: 'a.example', alpn: ['h2'] });
    const patched = (at: number, bytes: number[]) => {
      const copy = Buffer.from(good);
      Buffer.from(bytes).copy(copy, at);
      return inRecords(copy);
    };
    // Session id length 33 (offset 4 + 2 + 32 = 38); invalid even with only the next byte present.
    expectInvalid(parseClientHello(patched(38, [33]).subarray(0, 5 + 40)), /session id length 33/);
    // Cipher suites of odd and of zero length.
    expectInvalid(parseClientHello(patched(71, [0, 3])), /cipher suites length 3/);
    expectInvalid(parseClientHello(patched(71, [0, 0])), /cipher suites length 0/);
    // Cipher suites longer than the whole message.
    expectInvalid(parseClientHello(patched(71, [0xff, 0xfe]).subarray(0, 80)), /cipher suites runs past/);
    // Client version major 2.
    expectInvalid(parseClientHello(patched(4, [2, 0])), /client version major 2/);
  });

  test('extensions: lengths must fill their containers exactly', () => {
    const message = handshakeMessage({ noExtensions: true });
    const withExtensions = (block: Buffer, declared = block.length) => {
      const body = Buffer.concat([message.subarray(4), u16(declared), block]);
      const header = Buffer.from([1, 0, 0, 0]);
      header.writeUIntBE(body.length, 1, 3);
      return inRecords(Buffer.concat([header, body]));
    };
    const sni = sniExtension('a.example');
    expectHello(parseClientHello(withExtensions(sni)), 'a.example', [], withExtensions(sni).length);
    expectInvalid(parseClientHello(withExtensions(sni, sni.length - 1)), /extensions length/);
    expectInvalid(parseClientHello(withExtensions(Buffer.concat([sni, Buffer.from([0])]))), /extension type runs past/);
    const lying = Buffer.from(sni);
    lying.writeUInt16BE(200, 2); // extension length past the block
    expectInvalid(parseClientHello(withExtensions(lying)), /extension 0 length 200 runs past/);
    const innerShort = Buffer.from(sni);
    innerShort.writeUInt16BE(sni.length - 7, 4); // server name list shorter than the extension
    expectInvalid(parseClientHello(withExtensions(innerShort)), /server name list length/);
    expectInvalid(parseClientHello(withExtensions(Buffer.concat([sni, sni]))), /extension 0 appears twice/);
    expectInvalid(parseClientHello(withExtensions(Buffer.concat([ext(16, Buffer.from('00030000', 'hex'))]))), /ALPN list length 3/);
    expectInvalid(parseClientHello(withExtensions(ext(16, Buffer.from('000200', 'hex')))), /ALPN list length 2 does not fill|runs past/);
    expectInvalid(parseClientHello(withExtensions(ext(16, Buffer.from('00020000', 'hex')))), /empty ALPN protocol name/);
  });

  test('server names: lowercased, trailing dot dropped, first host_name wins, bad names invalid', () => {
    const name = (serverName: string | Buffer) => parseClientHello(encodeHello({ serverName }));
    assert.equal((name('Polling.EXAMPLE.com') as { serverName: string }).serverName, 'polling.example.com');
    assert.equal((name('polling.example.com.') as { serverName: string }).serverName, 'polling.example.com');
    assert.equal((name('under_score.example') as { serverName: string }).serverName, 'under_score.example');
    expectInvalid(name(''), /empty server name/);
    expectInvalid(name('a b.example'), /not a DNS host name/);
    expectInvalid(name('a..example'), /not a DNS host name/);
    expectInvalid(name('evil.example/\x00'), /not a DNS host name/);
    expectInvalid(name(Buffer.from('\u00e9.example', 'latin1')), /not a DNS host name/);
    expectInvalid(name(`${'a'.repeat(64)}.example`), /not a DNS host name/);
    const long = Array(64).fill('abc').join('.'); // 255 bytes
    assert.equal((name(long) as { serverName: string }).serverName, long);
    expectInvalid(name(`${long}x`), /256 bytes exceeds 255/);

    // Two entries: an unknown name type first, then two host names.
    const entries = Buffer.concat([
      Buffer.concat([u8(9), u16(3), Buffer.from('zzz')]),
      Buffer.concat([u8(0), u16(5), Buffer.from('first')]),
      Buffer.concat([u8(0), u16(6), Buffer.from('second')]),
    ]);
    const message = handshakeMessage({ extra: [[0, Buffer.concat([u16(entries.length), entries])]] });
    assert.equal((parseClientHello(inRecords(message)) as { serverName: string }).serverName, 'first');
  });

  test('garbage after a valid record header never throws, at every truncation', () => {
    const garbage = Buffer.concat([Buffer.from('1603010100', 'hex'), Buffer.from('01000100'), Buffer.alloc(300, 0x41)]);
    for (let cut = 0; cut <= garbage.length; cut++) {
      const result = parseClientHello(garbage.subarray(0, cut));
      assert.ok(result.kind === 'need-more' || result.kind === 'invalid', JSON.stringify(result));
    }
  });
});

// ---------------------------------------------------------------------------------------
// A plain, non-incremental reference decoder, to cross-check what the parser accepts.

function referenceDecode(buffer: Buffer): { serverName: string | null; alpn: string[]; bytes: number } {
  // Records are concatenated until the message is whole; the last may be cut short after it.
  let at = 0;
  let message = Buffer.alloc(0);
  let need = Infinity;
  let bytes = 0;
  while (message.length < need) {
    if (buffer[at] !== 22 || buffer[at + 1] !== 3 || buffer[at + 2] === undefined) throw new Error('record header');
    if (at + 5 > buffer.length) throw new Error('short');
    const length = buffer.readUInt16BE(at + 3);
    if (length === 0 || length > 18432) throw new Error('record length');
    const before = message.length;
    message = Buffer.concat([message, buffer.subarray(at + 5, Math.min(buffer.length, at + 5 + length))]);
    if (message.length >= 4) need = 4 + message.readUIntBE(1, 3);
    if (message.length >= need) bytes = at + 5 + (need - before);
    else if (at + 5 + length > buffer.length) throw new Error('short');
    at += 5 + length;
  }
  if (message[0] !== 1) throw new Error('type');
  const body = message.subarray(4, need);
  let p = 0;
  const take = (n: number) => {
    if (p + n > body.length) throw new Error('short');
    p += n;
    return body.subarray(p - n, p);
  };
  if (take(2)[0] !== 3) throw new Error('version');
  take(32);
  const sid = take(1)[0]!;
  if (sid > 32) throw new Error('sid');
  take(sid);
  const suites = take(2).readUInt16BE();
  if (suites === 0 || suites % 2) throw new Error('suites');
  take(suites);
  const comp = take(1)[0]!;
  if (comp === 0) throw new Error('comp');
  take(comp);
  let serverName: string | null = null;
  let alpn: string[] = [];
  if (p === body.length) return { serverName, alpn, bytes };
  if (take(2).readUInt16BE() !== body.length - p) throw new Error('extensions');
  const seen = new Set<number>();
  while (p < body.length) {
    const type = take(2).readUInt16BE();
    const data = take(take(2).readUInt16BE());
    if (seen.has(type)) throw new Error('dup');
    seen.add(type);
    if (type === 0) {
      if (data.length < 5 || data.readUInt16BE() !== data.length - 2) throw new Error('sni list');
      for (let q = 2; q < data.length; ) {
        if (q + 3 > data.length) throw new Error('sni entry');
        const kind = data[q]!;
        const len = data.readUInt16BE(q + 1);
        if (q + 3 + len > data.length) throw new Error('sni entry');
        const raw = data.subarray(q + 3, q + 3 + len);
        q += 3 + len;
        if (kind !== 0 || serverName !== null) continue;
        if (len === 0 || len > 255) throw new Error('sni length');
        const name = raw.toString('latin1').toLowerCase().replace(/\.$/, '');
        if (!/^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$/.test(name)) throw new Error('sni name');
        serverName = name;
      }
    } else if (type === 16) {
      if (data.length < 3 || data.readUInt16BE() !== data.length - 2) throw new Error('alpn list');
      alpn = [];
      for (let q = 2; q < data.length; ) {
        const len = data[q]!;
        if (len === 0 || q + 1 + len > data.length) throw new Error('alpn entry');
        alpn.push(data.toString('latin1', q + 1, q + 1 + len));
        q += 1 + len;
      }
    }
  }
  return { serverName, alpn, bytes };
}

describe('parseClientHello: properties', () => {
  const label = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
  const hostName = fc.array(label, { minLength: 1, maxLength: 5 }).map((labels) => labels.join('.'));
  const protocol = fc.uint8Array({ minLength: 1, maxLength: 30 }).map((bytes) => Buffer.from(bytes).toString('latin1'));
  const spec = fc.record(
    {
      serverName: hostName,
      alpn: fc.array(protocol, { minLength: 1, maxLength: 6 }),
      sessionId: fc.uint8Array({ maxLength: 32 }).map((b) => Buffer.from(b)),
      suites: fc.integer({ min: 1, max: 40 }),
      extra: fc.uniqueArray(
        fc.tuple(
          fc.integer({ min: 17, max: 0xffff }),
          fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b)),
        ),
        { maxLength: 5, selector: ([type]) => type },
      ),
      recordSizes: fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 4 }),
    },
    { requiredKeys: ['sessionId', 'suites', 'extra', 'recordSizes'] },
  );

  test('random bytes never throw, and never make a hello', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const result = parseClientHello(Buffer.from(bytes));
        assert.notEqual(result.kind, 'hello');
      }),
      { numRuns: 5000 },
    );
  });

  test('random bytes behind a plausible record and handshake header never throw; hello only when the reference agrees', () => {
    const framed = fc.tuple(fc.integer({ min: 1, max: 3 }), fc.uint8Array({ maxLength: 400 })).map(([minor, body]) => {
      const message = Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.from(body)]);
      message.writeUIntBE(body.length, 1, 3);
      return Buffer.concat([Buffer.from([22, 3, minor]), u16(message.length), message]);
    });
    fc.assert(
      fc.property(framed, (bytes) => {
        const result = parseClientHello(bytes);
        if (result.kind === 'hello') assert.deepEqual({ ...result, kind: undefined }, { ...referenceDecode(bytes), kind: undefined });
      }),
      { numRuns: 3000 },
    );
  });

  test('valid hellos round-trip, and every prefix needs more', () => {
    fc.assert(
      fc.property(spec, (s) => {
        const bytes = encodeHello(s);
        const expectedName = s.serverName ?? null;
        expectHello(parseClientHello(bytes), expectedName, s.alpn ?? [], bytes.length);
        for (let cut = 0; cut < bytes.length; cut += 7) assert.equal(parseClientHello(bytes.subarray(0, cut)).kind, 'need-more');
      }),
      { numRuns: 300 },
    );
  });

  test('mutated valid hellos never throw; the parser and the reference agree on what is a hello', () => {
    const mutated = fc.tuple(spec, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })).map(([s, edits]) => {
      const bytes = encodeHello(s);
      for (const [position, value] of edits) bytes[position % bytes.length] = value;
      return bytes;
    });
    fc.assert(
      fc.property(mutated, (bytes) => {
        const result = parseClientHello(bytes);
        let reference: ReturnType<typeof referenceDecode> | null = null;
        try {
          reference = referenceDecode(bytes);
        } catch {
          reference = null;
        }
        if (result.kind === 'hello') {
          assert.ok(reference, `parser accepted what the reference rejects: ${bytes.toString('hex')}`);
          assert.deepEqual({ serverName: result.serverName, alpn: result.alpn, bytes: result.bytes }, reference);
        } else if (reference) {
          assert.fail(`reference accepted what the parser answered ${JSON.stringify(result)}: ${bytes.toString('hex')}`);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseProxyHeader, type ProxyHeaderResult } from '../../../src/comms/front-door/proxy-protocol.js';

const SIGNATURE = '0d0a0d0a000d0a515549540a';

function v2(hex: string): Buffer {
  return Buffer.from(SIGNATURE + hex.replace(/\s+/g, ''), 'hex');
}

function expectInvalid(result: ProxyHeaderResult, pattern: RegExp): void {
  assert.equal(result.kind, 'invalid', JSON.stringify(result));
  assert.match((result as { reason: string }).reason, pattern);
}

/** Every proper prefix needs more; the whole header (and anything after it) gives `expected`. */
function checkAllPrefixes(header: Buffer, expected: ProxyHeaderResult): void {
  for (let cut = 0; cut < header.length; cut++) {
    assert.deepEqual(parseProxyHeader(header.subarray(0, cut)), { kind: 'need-more' }, `prefix of ${cut}/${header.length}`);
  }
  assert.deepEqual(parseProxyHeader(header), expected);
  assert.deepEqual(parseProxyHeader(Buffer.concat([header, Buffer.from('160301', 'hex')])), expected);
}

describe('PROXY protocol v1 (literal examples from proxy-protocol.txt)', () => {
  test('TCP4', () => {
    const header = Buffer.from('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n');
    checkAllPrefixes(header, {
      kind: 'header',
      version: 1,
      command: 'PROXY',
      source: { address: '192.168.0.1', port: 56324 },
      destination: { address: '192.168.0.11', port: 443 },
      bytes: header.length,
    });
  });

  test('worst-case TCP4 and TCP6 lines', () => {
    const tcp4 = Buffer.from('PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n');
    assert.deepEqual(parseProxyHeader(tcp4), {
      kind: 'header',
      version: 1,
      command: 'PROXY',
      source: { address: '255.255.255.255', port: 65535 },
      destination: { address: '255.255.255.255', port: 65535 },
      bytes: 56,
    });
    const max6 = 'ffff:f...f:ffff'.replace('f...f', Array(6).fill('ffff').join(':'));
    const tcp6 = Buffer.from(`PROXY TCP6 ${max6} ${max6} 65535 65535\r\n`);
    assert.equal(tcp6.length, 104);
    checkAllPrefixes(tcp6, {
      kind: 'header',
      version: 1,
      command: 'PROXY',
      source: { address: max6, port: 65535 },
      destination: { address: max6, port: 65535 },
      bytes: 104,
    });
  });

  test('UNKNOWN, bare and with the 107-byte worst case', () => {
    checkAllPrefixes(Buffer.from('PROXY UNKNOWN\r\n'), { kind: 'header', version: 1, command: 'PROXY', bytes: 15 });
    const max6 = Array(8).fill('ffff').join(':');
    const longest = Buffer.from(`PROXY UNKNOWN ${max6} ${max6} 65535 65535\r\n`);
    assert.equal(longest.length, 107);
    assert.deepEqual(parseProxyHeader(longest), { kind: 'header', version: 1, command: 'PROXY', bytes: 107 });
  });

  test('bad lines are invalid', () => {
    const bad: [string, RegExp][] = [
      ['PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n', /has 5 fields/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 80 443 9\r\n', /has 7 fields/],
      ['PROXY TCP4  1.2.3.4 5.6.7.8 80 443\r\n', /has 7 fields/],
      ['PROXY TCP4 ::1 ::1 80 443\r\n', /not an IPv4 address/],
      ['PROXY TCP6 1.2.3.4 ::1 80 443\r\n', /not an IPv6 address/],
      ['PROXY TCP4 1.2.3.400 5.6.7.8 80 443\r\n', /not an IPv4 address/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 65536 443\r\n', /not 0\.\.65535/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 080 443\r\n', /not 0\.\.65535/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 -1 443\r\n', /not 0\.\.65535/],
      ['PROXY UDP4 1.2.3.4 5.6.7.8 80 443\r\n', /"UDP4" is not TCP4/],
      ['PROXY \r\n', /"" is not TCP4/],
      ['PROXY TCP4 1.2.3.4\n', /byte 0x0a/],
      ['PROXY TCP4 1.2.3.4\rX', /CR without LF/],
      ['PROXY TCP4 1.2.3.4\t5.6.7.8 80 443\r\n', /byte 0x09/],
      [`PROXY UNKNOWN ${'x'.repeat(92)}\r\n`, /longer than 107/],
      [`PROXY UNKNOWN ${'x'.repeat(200)}`, /longer than 107/],
      ['proxy TCP4 1.2.3.4 5.6.7.8 80 443\r\n', /does not start with a PROXY/],
    ];
    for (const [line, pattern] of bad) expectInvalid(parseProxyHeader(Buffer.from(line, 'latin1')), pattern);
  });

  test('a CR as byte 107 is already too long', () => {
    const header = Buffer.from(`PROXY UNKNOWN ${'x'.repeat(92)}\r`);
    assert.equal(header.length, 107);
    expectInvalid(parseProxyHeader(header), /longer than 107/);
  });
});

describe('PROXY protocol v2', () => {
  test('TCP4 PROXY, at every byte boundary', () => {
    const header = v2('21 11 000c  c0a80001 c0a8000b dc04 01bb');
    checkAllPrefixes(header, {
      kind: 'header',
      version: 2,
      command: 'PROXY',
      source: { address: '192.168.0.1', port: 56324 },
      destination: { address: '192.168.0.11', port: 443 },
      bytes: 28,
    });
  });

  test('TCP6 PROXY with TLVs (ALPN, authority, CRC32C, NOOP) skipped', () => {
    const tlvs = '01 0002 6832' + '02 000b 6578616d706c652e636f6d' + '03 0004 00000000' + '04 0000';
    const addresses = '20010db8000000000000000000000001' + '00000000000000000000ffff7f000001' + '1f90' + '0050';
    const length = (addresses.length + tlvs.replace(/\s+/g, '').length) / 2;
    const header = v2(`21 21 ${length.toString(16).padStart(4, '0')} ${addresses} ${tlvs}`);
    checkAllPrefixes(header, {
      kind: 'header',
      version: 2,
      command: 'PROXY',
      source: { address: '2001:db8::1', port: 8080 },
      destination: { address: '::ffff:127.0.0.1', port: 80 },
      bytes: 16 + length,
    });
  });

  test('LOCAL (health checks): any protocol block is discarded', () => {
    checkAllPrefixes(v2('20 00 0000'), { kind: 'header', version: 2, command: 'LOCAL', bytes: 16 });
    assert.deepEqual(parseProxyHeader(v2('20 11 000c 7f000001 7f000001 0001 0002')), { kind: 'header', version: 2, command: 'LOCAL', bytes: 28 });
    assert.deepEqual(parseProxyHeader(v2('20 ff 0003 010203')), { kind: 'header', version: 2, command: 'LOCAL', bytes: 19 });
  });

  test('UNSPEC and UNIX PROXY carry no addresses', () => {
    assert.deepEqual(parseProxyHeader(v2('21 00 0000')), { kind: 'header', version: 2, command: 'PROXY', bytes: 16 });
    const unix = v2(`21 31 00d8 ${'00'.repeat(216)}`);
    assert.deepEqual(parseProxyHeader(unix), { kind: 'header', version: 2, command: 'PROXY', bytes: 232 });
  });

  test('bad headers are invalid as soon as the bad byte arrives', () => {
    expectInvalid(parseProxyHeader(v2('11')), /version 1/);
    expectInvalid(parseProxyHeader(v2('22')), /command 2/);
    expectInvalid(parseProxyHeader(v2('21 12')), /0x12 is not TCP/); // UDP over IPv4
    expectInvalid(parseProxyHeader(v2('21 22')), /0x22 is not TCP/);
    expectInvalid(parseProxyHeader(v2('21 41')), /0x41 is not TCP/);
    expectInvalid(parseProxyHeader(v2('21 11 000b')), /length 11 is shorter than the 12-byte/);
    expectInvalid(parseProxyHeader(v2('21 21 000c')), /length 12 is shorter than the 36-byte/);
    expectInvalid(parseProxyHeader(v2('21 11 fff0')), /65536 bytes exceeds 4096/);
    expectInvalid(parseProxyHeader(v2('21 11 0100'), 200), /272 bytes exceeds 200/);
    assert.equal(parseProxyHeader(v2('21 11 0100'), 272).kind, 'need-more');
  });

  test('garbage and TLS without a header are invalid', () => {
    expectInvalid(parseProxyHeader(Buffer.from('16030100', 'hex')), /does not start with a PROXY/);
    expectInvalid(parseProxyHeader(Buffer.from('GET / HTTP/1.1\r\n')), /does not start with a PROXY/);
    expectInvalid(parseProxyHeader(Buffer.from('0d0a0d0a000d0a51554954', 'hex').fill(0x0b, 10)), /does not start with a PROXY/);
    expectInvalid(parseProxyHeader(Buffer.from('PROXX')), /does not start with a PROXY/);
  });
});

describe('PROXY protocol: properties', () => {
  const ipv4 = fc.ipV4();
  const ipv6 = fc.ipV6();
  const port = fc.integer({ min: 0, max: 65535 });

  test('random bytes never throw', () => {
    const arbitrary = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.concat([Buffer.from('PROXY '), Buffer.from(b)])),
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.concat([Buffer.from(SIGNATURE, 'hex'), Buffer.from(b)])),
    );
    fc.assert(
      fc.property(arbitrary, (bytes) => {
        const result = parseProxyHeader(bytes);
        assert.ok(['header', 'need-more', 'invalid'].includes(result.kind));
        if (result.kind === 'header') assert.ok(result.bytes <= bytes.length);
      }),
      { numRuns: 5000 },
    );
  });

  test('v1 TCP4/TCP6 round-trip, every prefix needs more', () => {
    const line = fc.oneof(fc.tuple(fc.constant('TCP4'), ipv4, ipv4), fc.tuple(fc.constant('TCP6'), ipv6, ipv6));
    fc.assert(
      fc.property(line, port, port, ([protocol, src, dst], sport, dport) => {
        const header = Buffer.from(`PROXY ${protocol} ${src} ${dst} ${sport} ${dport}\r\n`);
        const expected = { kind: 'header', version: 1, command: 'PROXY', source: { address: src, port: sport }, destination: { address: dst, port: dport }, bytes: header.length };
        assert.deepEqual(parseProxyHeader(Buffer.concat([header, Buffer.from([0x16, 3, 1])])), expected);
        for (let cut = 0; cut < header.length; cut += 5) assert.equal(parseProxyHeader(header.subarray(0, cut)).kind, 'need-more');
      }),
      { numRuns: 1000 },
    );
  });

  test('v2 TCP4/TCP6 round-trip; IPv6 text matches the WHATWG URL serializer (RFC 5952)', () => {
    const address = fc.oneof(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      // Mostly zero groups, to exercise "::" placement.
      fc.array(fc.constantFrom(0, 0, 0, 1, 0xffff), { minLength: 8, maxLength: 8 }).map((groups) => {
        const bytes = new Uint8Array(16);
        groups.forEach((g, i) => {
          bytes[2 * i] = g >> 8;
          bytes[2 * i + 1] = g & 0xff;
        });
        return bytes;
      }),
    );
    fc.assert(
      fc.property(address, address, port, port, fc.uint8Array({ maxLength: 40 }), (src, dst, sport, dport, tlv) => {
        const body = Buffer.concat([Buffer.from(src), Buffer.from(dst), Buffer.from([sport >> 8, sport & 0xff, dport >> 8, dport & 0xff]), Buffer.from(tlv)]);
        const header = Buffer.concat([Buffer.from(SIGNATURE, 'hex'), Buffer.from([0x21, 0x21, body.length >> 8, body.length & 0xff]), body]);
        const result = parseProxyHeader(header);
        assert.equal(result.kind, 'header');
        if (result.kind !== 'header') return;
        assert.equal(result.bytes, header.length);
        assert.equal(result.source?.port, sport);
        assert.equal(result.destination?.port, dport);
        for (const [bytes, text] of [
          [src, result.source!.address],
          [dst, result.destination!.address],
        ] as const) {
          const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
          if (mapped) assert.equal(text, `::ffff:${bytes.slice(12).join('.')}`);
          else assert.equal(text, urlIPv6(Buffer.from(bytes)));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

/** The WHATWG URL parser's canonical IPv6 text, from the full uncompressed form. */
function urlIPv6(bytes: Buffer): string {
  const full = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(2 * i).toString(16)).join(':');
  return new URL(`http://[${full}]/`).hostname.slice(1, -1);
}

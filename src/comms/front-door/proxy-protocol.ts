import net from 'node:net';

/**
 * The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that nginx or
 * HAProxy sends before the client's bytes, announcing the real client address.
 *
 * Pure and incremental like the ClientHello parser: `need-more` only while the bytes so far
 * are a legal prefix of a header that fits `maxBytes`; anything else is `invalid` at once.
 * It never throws. TLVs of version 2 are skipped (nothing in them is needed for routing).
 */

export interface ProxyEndpoint {
  address: string;
  port: number;
}

export interface ProxyHeader {
  kind: 'header';
  version: 1 | 2;
  /**
   * PROXY: relayed for a client; `source`/`destination` are set for TCP over IPv4/IPv6 and
   * absent for v1 UNKNOWN and v2 UNSPEC/UNIX. LOCAL: the proxy's own connection (a health
   * check); use the socket's real endpoints.
   */
  command: 'PROXY' | 'LOCAL';
  source?: ProxyEndpoint;
  destination?: ProxyEndpoint;
  /** Length of the header; the client's bytes start here. */
  bytes: number;
}

export type ProxyHeaderResult = ProxyHeader | { kind: 'need-more' } | { kind: 'invalid'; reason: string };

/**
 * Default cap on a version 2 header, TLVs included. Proxies send 16 + 12..216 bytes plus a
 * few TLVs; the format allows 16 + 65535, which no one needs to buffer before TLS.
 */
export const DEFAULT_MAX_PROXY_HEADER_BYTES = 4096;

/** Version 1 headers are at most 107 bytes, CRLF included (proxy-protocol.txt 2.1). */
const V1_MAX_BYTES = 107;
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_HEADER_BYTES = 16;

const NEED_MORE: ProxyHeaderResult = Object.freeze({ kind: 'need-more' });

export function parseProxyHeader(buffer: Buffer, maxBytes: number = DEFAULT_MAX_PROXY_HEADER_BYTES): ProxyHeaderResult {
  if (buffer.length === 0) return NEED_MORE;
  if (isPrefixOf(buffer, V2_SIGNATURE)) return buffer.length >= V2_SIGNATURE.length ? parseV2(buffer, maxBytes) : NEED_MORE;
  if (isPrefixOf(buffer, V1_PREFIX)) return buffer.length >= V1_PREFIX.length ? parseV1(buffer) : NEED_MORE;
  return invalid('the connection does not start with a PROXY protocol v1 or v2 header; is the proxy in front configured to send one?');
}

/** True when the shorter of the two is a prefix of the other. */
function isPrefixOf(buffer: Buffer, expected: Buffer): boolean {
  const n = Math.min(buffer.length, expected.length);
  return buffer.subarray(0, n).equals(expected.subarray(0, n));
}

function invalid(reason: string): ProxyHeaderResult {
  return { kind: 'invalid', reason };
}

function parseV1(buffer: Buffer): ProxyHeaderResult {
  const scan = Math.min(buffer.length, V1_MAX_BYTES);
  let lineEnd = -1;
  for (let i = 0; i < scan; i++) {
    const byte = buffer[i]!;
    if (byte === 0x0d) {
      if (i + 2 > V1_MAX_BYTES) break;
      if (i + 1 >= buffer.length) return NEED_MORE;
      if (buffer[i + 1] !== 0x0a) return invalid('PROXY v1 header has a CR without LF');
      lineEnd = i;
      break;
    }
    if (byte < 0x20 || byte > 0x7e) return invalid(`PROXY v1 header contains byte 0x${byte.toString(16).padStart(2, '0')}`);
  }
  if (lineEnd < 0) return buffer.length >= V1_MAX_BYTES ? invalid(`PROXY v1 header longer than ${V1_MAX_BYTES} bytes`) : NEED_MORE;

  const bytes = lineEnd + 2;
  const fields = buffer.toString('latin1', 0, lineEnd).split(' ');
  const protocol = fields[1];
  // UNKNOWN: whatever follows is to be ignored, and the real endpoints used.
  if (protocol === 'UNKNOWN') return { kind: 'header', version: 1, command: 'PROXY', bytes };
  if (protocol !== 'TCP4' && protocol !== 'TCP6') return invalid(`PROXY v1 protocol ${JSON.stringify(protocol ?? '')} is not TCP4, TCP6 or UNKNOWN`);
  if (fields.length !== 6) return invalid(`PROXY v1 ${protocol} header has ${fields.length} fields, expected 6`);
  const [, , sourceAddress, destinationAddress, sourcePort, destinationPort] = fields as [string, string, string, string, string, string];
  const family = protocol === 'TCP4' ? 4 : 6;
  for (const address of [sourceAddress, destinationAddress]) {
    if (net.isIP(address) !== family) return invalid(`PROXY v1 address ${JSON.stringify(address)} is not an IPv${family} address`);
  }
  const ports = [sourcePort, destinationPort].map(parsePort);
  if (ports[0] === null || ports[1] === null) return invalid(`PROXY v1 ports ${JSON.stringify(`${sourcePort} ${destinationPort}`)} are not 0..65535`);
  return {
    kind: 'header',
    version: 1,
    command: 'PROXY',
    source: { address: sourceAddress, port: ports[0]! },
    destination: { address: destinationAddress, port: ports[1]! },
    bytes,
  };
}

function parsePort(text: string): number | null {
  if (!/^(?:0|[1-9][0-9]{0,4})$/.test(text)) return null;
  const port = Number(text);
  return port <= 65535 ? port : null;
}

function parseV2(buffer: Buffer, maxBytes: number): ProxyHeaderResult {
  if (buffer.length < 13) return NEED_MORE;
  const versionCommand = buffer[12]!;
  if (versionCommand >> 4 !== 2) return invalid(`PROXY v2 signature with version ${versionCommand >> 4}`);
  const commandCode = versionCommand & 0x0f;
  if (commandCode > 1) return invalid(`PROXY v2 command ${commandCode} is neither LOCAL (0) nor PROXY (1)`);
  const command = commandCode === 0 ? 'LOCAL' : 'PROXY';
  if (buffer.length < 14) return NEED_MORE;
  const family = buffer[13]!;
  // LOCAL: the protocol block, family included, is to be discarded.
  const addressBytes = command === 'LOCAL' ? 0 : addressBlockLength(family);
  if (addressBytes === null) return invalid(`PROXY v2 address family/protocol 0x${family.toString(16).padStart(2, '0')} is not TCP over IPv4, IPv6, UNIX or UNSPEC`);
  if (buffer.length < V2_HEADER_BYTES) return NEED_MORE;
  const length = buffer.readUInt16BE(14);
  const bytes = V2_HEADER_BYTES + length;
  if (bytes > maxBytes) return invalid(`PROXY v2 header of ${bytes} bytes exceeds ${maxBytes}`);
  if (length < addressBytes) return invalid(`PROXY v2 length ${length} is shorter than the ${addressBytes}-byte address block`);
  if (buffer.length < bytes) return NEED_MORE;

  if (command === 'LOCAL' || (family !== 0x11 && family !== 0x21)) return { kind: 'header', version: 2, command, bytes };
  const at = V2_HEADER_BYTES;
  const size = family === 0x11 ? 4 : 16;
  const format = family === 0x11 ? formatIPv4 : formatIPv6;
  return {
    kind: 'header',
    version: 2,
    command,
    source: { address: format(buffer.subarray(at, at + size)), port: buffer.readUInt16BE(at + 2 * size) },
    destination: { address: format(buffer.subarray(at + size, at + 2 * size)), port: buffer.readUInt16BE(at + 2 * size + 2) },
    bytes,
  };
}

/** Address block size for a PROXY command's family/protocol byte; null when not accepted on a TCP listener. */
function addressBlockLength(family: number): number | null {
  switch (family) {
    case 0x00: // UNSPEC
      return 0;
    case 0x11: // TCP over IPv4
      return 12;
    case 0x21: // TCP over IPv6
      return 36;
    case 0x31: // UNIX stream
      return 216;
    default: // datagram families and undefined values
      return null;
  }
}

function formatIPv4(bytes: Buffer): string {
  return Array.from(bytes).join('.');
}

/** RFC 5952 text, with IPv4-mapped addresses as ::ffff:a.b.c.d like Node's remoteAddress. */
function formatIPv6(bytes: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${formatIPv4(bytes.subarray(12))}`;
  // Longest run of two or more zero groups becomes "::" (the first such run on a tie).
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const text = groups.map((g) => g.toString(16));
  if (bestStart < 0) return text.join(':');
  return `${text.slice(0, bestStart).join(':')}::${text.slice(bestStart + bestLength).join(':')}`;
}

/**
 * Reads just enough of a TLS ClientHello to route a connection without terminating TLS:
 * the SNI host name and the ALPN protocol list (RFC 8446 4.1.2, RFC 6066 3, RFC 7301 3.1).
 *
 * Pure and incremental: call it again with the longer buffer each time more bytes arrive.
 * The answer is `need-more` only while further bytes could still complete a legal
 * ClientHello; a length that cannot fit its container, or a message that would pass
 * `maxBytes`, is `invalid` at once, so a hostile client cannot make the caller wait or
 * buffer without bound. It never throws.
 */

export interface ClientHello {
  kind: 'hello';
  /** First host_name of the server_name extension, lowercased, without a trailing dot; null when absent. */
  serverName: string | null;
  /** ALPN protocol names in the client's order (bytes as latin1); empty when absent. */
  alpn: string[];
  /** Bytes of the buffer up to the end of the ClientHello message, record headers included. */
  bytes: number;
}

export type ClientHelloResult =
  | ClientHello
  | { kind: 'need-more' }
  /** The first bytes are not a TLS handshake record (plain HTTP, SSLv2-compatible hello, garbage). */
  | { kind: 'not-tls'; reason: string }
  /** It starts like TLS but breaks the rules; the connection should be dropped. */
  | { kind: 'invalid'; reason: string };

/** Default cap on the ClientHello, record headers included. Real ones are 0.2 to 2 KiB. */
export const DEFAULT_MAX_CLIENT_HELLO_BYTES = 16384;

const RECORD_HEADER_BYTES = 5;
const HANDSHAKE_HEADER_BYTES = 4;
const CONTENT_TYPE_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
/** TLSPlaintext may not exceed 2^14; tolerate the TLSCiphertext allowance like OpenSSL's lenient peers do. */
const MAX_RECORD_LENGTH = 16384 + 2048;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const NAME_TYPE_HOST_NAME = 0;
const MAX_HOST_NAME_BYTES = 255;
const HOST_LABEL = /^[a-z0-9_-]{1,63}$/;

const NEED_MORE: ClientHelloResult = Object.freeze({ kind: 'need-more' });

/** Thrown inside the parser only: the data ran out before a field that would still fit. */
class Short {}
/** Thrown inside the parser only: the bytes can never become a valid ClientHello. */
class Bad {
  constructor(readonly reason: string) {}
}

export function parseClientHello(buffer: Buffer, maxBytes: number = DEFAULT_MAX_CLIENT_HELLO_BYTES): ClientHelloResult {
  try {
    return parse(buffer, maxBytes);
  } catch (err) {
    if (err instanceof Short) return NEED_MORE;
    if (err instanceof Bad) return { kind: 'invalid', reason: err.reason };
    throw err;
  }
}

function parse(buffer: Buffer, maxBytes: number): ClientHelloResult {
  // Stage 1, record layer: gather the handshake bytes from consecutive handshake records
  // (a ClientHello may be split across several), stopping at the end of the buffer.
  const fragments: Buffer[] = [];
  let gathered = 0;
  let messageLength: number | null = null; // handshake header + body, once known
  let offset = 0;
  let records = 0;
  let end = -1; // buffer offset just past the ClientHello, once complete
  while (end < 0) {
    if (offset >= buffer.length) break;
    const first = records === 0;
    const type = buffer[offset]!;
    if (type !== CONTENT_TYPE_HANDSHAKE) {
      if (first) return { kind: 'not-tls', reason: `first byte 0x${hex(type)} is not a TLS handshake record` };
      throw new Bad(`the ClientHello is interrupted by a record of content type ${type}`);
    }
    // The record's minor version is not checked: a client may send any {03,xx} in the
    // records of its first ClientHello (RFC 5246 E.1; RFC 8446 5.1 asks 0x0301 or 0x0303).
    // nmap and other scanners send 03 00, and OpenSSL behind us accepts them all.
    if (offset + 1 < buffer.length && buffer[offset + 1] !== 3) {
      if (first) return { kind: 'not-tls', reason: `record version major ${buffer[offset + 1]} is not TLS` };
      throw new Bad(`record version major ${buffer[offset + 1]} is not TLS`);
    }
    if (offset + RECORD_HEADER_BYTES > buffer.length) break;
    const recordLength = buffer.readUInt16BE(offset + 3);
    if (recordLength === 0) throw new Bad('empty handshake record');
    if (recordLength > MAX_RECORD_LENGTH) throw new Bad(`record length ${recordLength} exceeds ${MAX_RECORD_LENGTH}`);
    records++;
    const bodyStart = offset + RECORD_HEADER_BYTES;
    const available = Math.min(recordLength, buffer.length - bodyStart);
    const wanted = messageLength === null ? available : Math.min(available, messageLength - gathered);
    fragments.push(buffer.subarray(bodyStart, bodyStart + wanted));
    gathered += wanted;
    if (messageLength === null && gathered >= HANDSHAKE_HEADER_BYTES) {
      const head = Buffer.concat(fragments);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) throw new Bad(`handshake type ${head[0]} is not ClientHello (1)`);
      messageLength = HANDSHAKE_HEADER_BYTES + head.readUIntBE(1, 3);
      // Re-trim: this record may hold bytes past the message.
      if (gathered > messageLength) {
        const keep = wanted - (gathered - messageLength);
        fragments[fragments.length - 1] = buffer.subarray(bodyStart, bodyStart + keep);
        gathered = messageLength;
      }
    }
    if (messageLength !== null) {
      // At least one record header per record seen so far; more records only add to it.
      const atLeast = records * RECORD_HEADER_BYTES + messageLength;
      if (atLeast > maxBytes) throw new Bad(`ClientHello larger than ${maxBytes} bytes (at least ${atLeast})`);
      if (gathered === messageLength) end = bodyStart + (fragments[fragments.length - 1]!.length);
    }
    if (available < recordLength) break;
    offset = bodyStart + recordLength;
  }

  const message = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments);
  if (messageLength === null) {
    if (message.length > 0 && message[0] !== HANDSHAKE_CLIENT_HELLO) throw new Bad(`handshake type ${message[0]} is not ClientHello (1)`);
    if (buffer.length >= maxBytes) throw new Bad(`ClientHello larger than ${maxBytes} bytes`);
    return NEED_MORE;
  }
  if (end < 0 && buffer.length >= maxBytes) throw new Bad(`ClientHello larger than ${maxBytes} bytes`);

  // Stage 2, the message body: every read is checked first against its container (Bad),
  // then against what has arrived (Short). The body container is the declared length.
  const { serverName, alpn } = parseBody(new Reader(message.subarray(HANDSHAKE_HEADER_BYTES)), messageLength - HANDSHAKE_HEADER_BYTES);
  // parseBody only returns after reading up to the declared length, so the message is whole.
  if (end < 0) return NEED_MORE;
  return { kind: 'hello', serverName, alpn, bytes: end };
}

class Reader {
  pos = 0;
  constructor(private readonly data: Buffer) {}

  private take(n: number, limit: number, what: string): number {
    if (this.pos + n > limit) throw new Bad(`${what} runs past its container`);
    if (this.pos + n > this.data.length) throw new Short();
    const at = this.pos;
    this.pos += n;
    return at;
  }
  u8(limit: number, what: string): number {
    return this.data[this.take(1, limit, what)]!;
  }
  u16(limit: number, what: string): number {
    return this.data.readUInt16BE(this.take(2, limit, what));
  }
  bytes(n: number, limit: number, what: string): Buffer {
    const at = this.take(n, limit, what);
    return this.data.subarray(at, at + n);
  }
  skip(n: number, limit: number, what: string): void {
    this.take(n, limit, what);
  }
}

function parseBody(r: Reader, end: number): { serverName: string | null; alpn: string[] } {
  const major = r.u8(end, 'client version');
  r.u8(end, 'client version');
  if (major !== 3) throw new Bad(`client version major ${major} is not TLS`);
  r.skip(32, end, 'random');
  const sessionIdLength = r.u8(end, 'session id length');
  if (sessionIdLength > 32) throw new Bad(`session id length ${sessionIdLength} exceeds 32`);
  r.skip(sessionIdLength, end, 'session id');
  const suitesLength = r.u16(end, 'cipher suites length');
  if (suitesLength < 2 || suitesLength % 2 !== 0) throw new Bad(`cipher suites length ${suitesLength} is not a positive even number`);
  r.skip(suitesLength, end, 'cipher suites');
  const compressionLength = r.u8(end, 'compression methods length');
  if (compressionLength < 1) throw new Bad('no compression methods');
  r.skip(compressionLength, end, 'compression methods');

  let serverName: string | null = null;
  let alpn: string[] = [];
  if (r.pos === end) return { serverName, alpn }; // extensions are optional before TLS 1.3
  const extensionsLength = r.u16(end, 'extensions length');
  if (r.pos + extensionsLength !== end) throw new Bad(`extensions length ${extensionsLength} does not match the ClientHello length`);
  const seen = new Set<number>();
  while (r.pos < end) {
    const type = r.u16(end, 'extension type');
    const length = r.u16(end, 'extension length');
    const extEnd = r.pos + length;
    if (extEnd > end) throw new Bad(`extension ${type} length ${length} runs past the extensions`);
    if (seen.has(type)) throw new Bad(`extension ${type} appears twice`);
    seen.add(type);
    if (type === EXT_SERVER_NAME) serverName = parseServerName(r, extEnd);
    else if (type === EXT_ALPN) alpn = parseAlpn(r, extEnd);
    else r.skip(length, extEnd, `extension ${type}`);
    if (r.pos !== extEnd) throw new Bad(`extension ${type} has ${extEnd - r.pos} trailing bytes`);
  }
  return { serverName, alpn };
}

function parseServerName(r: Reader, end: number): string | null {
  const listLength = r.u16(end, 'server name list length');
  if (listLength < 3 || r.pos + listLength !== end) throw new Bad(`server name list length ${listLength} does not fill the extension`);
  let found: string | null = null;
  while (r.pos < end) {
    const nameType = r.u8(end, 'server name type');
    const length = r.u16(end, 'server name length');
    const name = r.bytes(length, end, 'server name');
    if (nameType !== NAME_TYPE_HOST_NAME || found !== null) continue;
    found = checkHostName(name);
  }
  return found;
}

function checkHostName(raw: Buffer): string {
  if (raw.length === 0) throw new Bad('empty server name');
  if (raw.length > MAX_HOST_NAME_BYTES) throw new Bad(`server name of ${raw.length} bytes exceeds ${MAX_HOST_NAME_BYTES}`);
  let name = raw.toString('latin1').toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1); // absolute form; RFC 6066 says omit the dot, some clients do not
  if (!name.split('.').every((label) => HOST_LABEL.test(label))) {
    throw new Bad(`server name ${JSON.stringify(name.slice(0, 64))} is not a DNS host name`);
  }
  return name;
}

function parseAlpn(r: Reader, end: number): string[] {
  const listLength = r.u16(end, 'ALPN list length');
  if (listLength < 2 || r.pos + listLength !== end) throw new Bad(`ALPN list length ${listLength} does not fill the extension`);
  const names: string[] = [];
  while (r.pos < end) {
    const length = r.u8(end, 'ALPN name length');
    if (length === 0) throw new Bad('empty ALPN protocol name');
    names.push(r.bytes(length, end, 'ALPN name').toString('latin1'));
  }
  return names;
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

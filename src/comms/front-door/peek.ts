import type net from 'node:net';
import { ReefError, type ErrorCode } from '../../errors.js';
import { DEFAULT_MAX_CLIENT_HELLO_BYTES, parseClientHello, type ClientHello } from './client-hello.js';
import { DEFAULT_MAX_PROXY_HEADER_BYTES, parseProxyHeader, type ProxyHeader } from './proxy-protocol.js';

export interface PreambleOptions {
  /** Expect a PROXY protocol v1/v2 header first; without one the connection is invalid. */
  proxyProtocol: boolean;
  /** Deadline for the whole preamble, from the call (not per read), so a trickling client is cut off. */
  timeoutMs: number;
  /** Cap on the ClientHello, record headers included. Default DEFAULT_MAX_CLIENT_HELLO_BYTES (16 KiB). */
  maxBytes?: number;
  /** Cap on a PROXY v2 header. Default DEFAULT_MAX_PROXY_HEADER_BYTES (4 KiB). */
  maxProxyHeaderBytes?: number;
}

export interface Preamble {
  proxy?: ProxyHeader;
  /** `not-tls` when the first bytes are not a TLS handshake (plain HTTP, say): the caller decides. */
  hello: ClientHello | { kind: 'not-tls'; reason: string };
  /** Every byte read after the PROXY header; `socket.unshift()` it before handing the socket on. */
  buffered: Buffer;
}

/**
 * Reads the PROXY header (when expected) and the ClientHello from a fresh socket without
 * consuming the TLS stream: the PROXY header is dropped, everything after it is returned in
 * `buffered` for the caller to put back.
 *
 * Reads with `socket.read()` in paused mode, so no byte is emitted as 'data' behind the
 * caller's back; on return the socket is still paused and none of these listeners remain.
 * On rejection the socket is left for the caller to destroy.
 *
 * Rejects with ReefError REEF_FRONT_DOOR_TIMEOUT, REEF_FRONT_DOOR_INVALID or
 * REEF_CONNECTION_LOST.
 */
export function readPreamble(socket: net.Socket, options: PreambleOptions): Promise<Preamble> {
  const maxHelloBytes = options.maxBytes ?? DEFAULT_MAX_CLIENT_HELLO_BYTES;
  const maxProxyBytes = options.maxProxyHeaderBytes ?? DEFAULT_MAX_PROXY_HEADER_BYTES;
  return new Promise<Preamble>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let proxy: ProxyHeader | undefined;
    let settled = false;

    const finish = (outcome: { preamble: Preamble } | { error: ReefError }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      if ('error' in outcome) reject(outcome.error);
      else resolve(outcome.preamble);
    };
    const fail = (code: ErrorCode, message: string, cause?: unknown): void => finish({ error: new ReefError(code, message, cause === undefined ? undefined : { cause }) });

    function onReadable(): void {
      let chunk: Buffer | null;
      let grew = false;
      while (!settled && (chunk = socket.read() as Buffer | null) !== null) {
        chunks.push(chunk);
        grew = true;
      }
      if (grew) examine();
    }

    function examine(): void {
      let data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      chunks.length = 0;
      chunks.push(data);
      if (options.proxyProtocol && !proxy) {
        const header = parseProxyHeader(data, maxProxyBytes);
        if (header.kind === 'need-more') return;
        if (header.kind === 'invalid') return fail('REEF_FRONT_DOOR_INVALID', `Invalid PROXY protocol header: ${header.reason}.`);
        proxy = header;
        // Keep only what follows the header, so the hello parser starts at byte 0.
        data = data.subarray(header.bytes);
        chunks[0] = data;
      }
      const hello = parseClientHello(data, maxHelloBytes);
      if (hello.kind === 'need-more') return;
      if (hello.kind === 'invalid') {
        return fail('REEF_FRONT_DOOR_INVALID', `Invalid TLS ClientHello: ${hello.reason}. The client is not speaking TLS correctly; it was disconnected.`);
      }
      finish({ preamble: { ...(proxy ? { proxy } : {}), hello, buffered: data } });
    }

    function onEnd(): void {
      const what = options.proxyProtocol && !proxy ? 'PROXY protocol header' : 'TLS ClientHello';
      const have = chunks[0]?.length ?? 0;
      fail('REEF_CONNECTION_LOST', `The client closed the connection before sending a complete ${what} (${have} bytes received).`);
    }

    function onError(err: Error): void {
      fail('REEF_CONNECTION_LOST', `The connection failed before the ${options.proxyProtocol && !proxy ? 'PROXY protocol header' : 'TLS ClientHello'} was read: ${err.message}`, err);
    }

    const timer = setTimeout(() => {
      const have = chunks[0]?.length ?? 0;
      fail(
        'REEF_FRONT_DOOR_TIMEOUT',
        `No complete ${options.proxyProtocol && !proxy ? 'PROXY protocol header' : 'TLS ClientHello'} within ${options.timeoutMs} ms (${have} bytes received); the client was too slow or is not a TLS client.`,
      );
    }, options.timeoutMs);

    if (socket.destroyed || socket.readableEnded) {
      fail('REEF_CONNECTION_LOST', 'The connection was already closed before its preamble could be read.');
      return;
    }
    socket.on('readable', onReadable);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onError);
    // Bytes may already sit in the stream's buffer; 'readable' also fires for those, but
    // reading now keeps the order obvious.
    onReadable();
  });
}

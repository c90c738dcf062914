/**
 * The baselines: bare mutual TLS with the same certificates and TLS settings as comms
 * (src/comms/tls-config.ts), and nothing on top (no ALPN, verdict, HTTP/2 or RPC). What
 * Reef adds is measured against these.
 *
 * A listener runs in one of three modes: `hold` keeps connections open and idle, `echo`
 * sends every byte back (ping-pong), `sink` reads a copy announced by an 8-byte length
 * and answers one byte once all of it arrived (bulk copy).
 */
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tls from 'node:tls';
import type { CertificateIdentity } from '../../src/pki/certificate.js';
import { baseTlsOptions, clientSecureContext } from '../../src/comms/tls-config.js';

export type ListenMode = 'hold' | 'echo' | 'sink';

export interface RawTlsListener {
  port: number;
  /** Connections that completed their handshake and are still open. */
  open(): number;
  close(): Promise<void>;
}

export async function listenRawTls(identity: CertificateIdentity, mode: ListenMode, host = '127.0.0.1'): Promise<RawTlsListener> {
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ ...baseTlsOptions(identity), requestCert: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // a client killed mid-run is expected
    socket.setNoDelay(true);
    if (mode === 'echo') socket.pipe(socket);
    else if (mode === 'sink') sink(socket);
  });
  // Thousands of clients connect at once in the fleet baseline.
  server.listen({ port: 0, host, backlog: 4096 });
  await once(server, 'listening');
  return {
    port: (server.address() as { port: number }).port,
    open: () => sockets.size,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function sink(socket: tls.TLSSocket): void {
  let expected = -1;
  let received = 0;
  let header = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    if (expected < 0) {
      header = Buffer.concat([header, chunk]);
      if (header.length < 8) return;
      expected = Number(header.readBigUInt64BE(0));
      chunk = header.subarray(8);
    }
    received += chunk.length;
    if (received >= expected) {
      socket.write('k');
      expected = -1;
      received = 0;
      header = Buffer.alloc(0);
    }
  });
}

export async function connectRawTls(identity: CertificateIdentity, port: number, host = '127.0.0.1'): Promise<tls.TLSSocket> {
  const socket = tls.connect({ secureContext: clientSecureContext(identity), rejectUnauthorized: false, host, port });
  socket.setNoDelay(true);
  await once(socket, 'secureConnect');
  return socket;
}

/** One byte to an `echo` listener and back. */
export async function pingPong(socket: tls.TLSSocket): Promise<void> {
  const answered = once(socket, 'data');
  socket.write('p');
  await answered;
}

/** Sends `size` bytes from `source` to a `sink` listener; resolves when it has them all. */
export async function copyTo(socket: tls.TLSSocket, source: Readable, size: number): Promise<void> {
  const header = Buffer.alloc(8);
  header.writeBigUInt64BE(BigInt(size));
  const acknowledged = once(socket, 'data');
  socket.write(header);
  await pipeline(source, socket, { end: false });
  await acknowledged;
}

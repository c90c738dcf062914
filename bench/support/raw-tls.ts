/**
 * The baselines: bare mutual TLS with the same certificates and TLS settings as comms
 * (src/comms/tls-config.ts), and nothing on top (no ALPN, verdict, HTTP/2 or RPC). What
 * Reef adds is measured against these.
 *
 * A listener runs in one of four modes: `hold` keeps connections open and idle, `echo`
 * sends every byte back (ping-pong), `sink` reads a copy announced by an 8-byte length
 * and answers one byte once all of it arrived (bulk copy), and `store` does what any
 * receiver of a file must at least do on top: SHA-256 the bytes and write them to a file
 * (fsynced before the answer), with nothing of Reef's (no HTTP/2, RPC or checks).
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tls from 'node:tls';
import type { CertificateIdentity } from '../../src/pki/certificate.js';
import { baseTlsOptions, clientSecureContext } from '../../src/comms/tls-config.js';

export type ListenMode = 'hold' | 'echo' | 'sink' | 'store';

export interface RawTlsListener {
  port: number;
  /** Connections that completed their handshake and are still open. */
  open(): number;
  close(): Promise<void>;
}

/** `storeDir`: where `store` mode writes (tmpfs, as the Tentacles' homes are). */
export async function listenRawTls(identity: CertificateIdentity, mode: ListenMode, host = '127.0.0.1', storeDir = '/dev/shm'): Promise<RawTlsListener> {
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ ...baseTlsOptions(identity), requestCert: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // a client killed mid-run is expected
    socket.setNoDelay(true);
    if (mode === 'echo') socket.pipe(socket);
    else if (mode === 'sink') sink(socket);
    else if (mode === 'store') store(socket, join(storeDir, `reef-bench-store-${process.pid}-${sockets.size}.bin`));
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

/** What a listener does with one copy's bytes; `done` settles before the copy is answered. */
interface CopyReceiver {
  take(chunk: Buffer): void;
  done(): Promise<void>;
}

/**
 * Reads copies announced by an 8-byte length, one after another, and answers one byte once
 * `receiver` is done with each. (A copy's bytes never run into the next one's header: the
 * sender waits for the answer.)
 */
function receiveCopies(socket: tls.TLSSocket, receiverFor: (size: number) => CopyReceiver): void {
  let header = Buffer.alloc(0);
  let copy: { remaining: number; receiver: CopyReceiver } | undefined;
  socket.on('data', (chunk: Buffer) => {
    if (!copy) {
      header = Buffer.concat([header, chunk]);
      if (header.length < 8) return;
      const size = Number(header.readBigUInt64BE(0));
      copy = { remaining: size, receiver: receiverFor(size) };
      chunk = header.subarray(8);
      header = Buffer.alloc(0);
    }
    copy.receiver.take(chunk);
    copy.remaining -= chunk.length;
    if (copy.remaining <= 0) {
      void copy.receiver.done().then(() => socket.write('k'), (err: Error) => socket.destroy(err));
      copy = undefined;
    }
  });
}

function sink(socket: tls.TLSSocket): void {
  receiveCopies(socket, () => ({ take: () => {}, done: async () => {} }));
}

/** Like `sink`, but every copy is hashed and written to `path` (removed before the answer). */
function store(socket: tls.TLSSocket, path: string): void {
  receiveCopies(socket, () => {
    const hash = createHash('sha256');
    // flush: fsync before close, as a Tentacle does before it moves a file into place; writes
    // queued while one is under way go down together (writev), up to 1 MiB, as a Tentacle's do.
    const file = createWriteStream(path, { flush: true, highWaterMark: 1024 * 1024 });
    file.on('error', (err) => socket.destroy(err));
    file.on('drain', () => socket.resume());
    return {
      take(chunk) {
        hash.update(chunk);
        if (!file.write(chunk)) socket.pause();
      },
      async done() {
        hash.digest();
        file.end();
        await once(file, 'close');
        await rm(path, { force: true });
      },
    };
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

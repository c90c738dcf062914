/**
 * Small TCP helpers for tests on 127.0.0.1: an echo server to stand behind forwarders
 * and proxies, a connect that waits for the handshake, and readers that collect bytes.
 */
import { once } from 'node:events';
import net from 'node:net';

export interface EchoServer {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Stop listening, destroy every connection, resolve once all handles are closed. */
  close(): Promise<void>;
}

/** Echoes every byte back; a FIN from the client is answered with a FIN. */
export async function startEchoServer(): Promise<EchoServer> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // resets are what the forwarder tests provoke
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get accepted() {
      return accepted;
    },
    async close() {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      const gone = [...sockets].map((s) => {
        s.destroy();
        return closed(s);
      });
      await Promise.all([stopped, ...gone]);
    },
  };
}

/** Connect to 127.0.0.1:port; errors after connecting are left to the caller's 'close'. */
export async function connectTcp(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  socket.on('error', () => {});
  return socket;
}

/** Resolve once the socket has closed, however it closed (unlike events.once, errors too). */
export function closed(socket: net.Socket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

/** Resolve with the first `n` bytes (extra bytes in the same chunk are discarded); reject if the socket closes first. */
export function readBytes(socket: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= n) {
        cleanup();
        resolve(Buffer.concat(chunks).subarray(0, n));
      }
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error(`socket closed after ${length} of the ${n} bytes expected`));
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/** Resolve with every byte received until the socket closes, however it closes. */
export function readUntilClose(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('close', () => resolve(Buffer.concat(chunks)));
  });
}

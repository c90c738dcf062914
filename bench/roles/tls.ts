/** Worker role: the bare mutual-TLS baseline, as a listener (hold, echo, sink) or as many idle clients. */
import type { TLSSocket } from 'node:tls';
import type { CertificateIdentity } from '../../src/pki/certificate.js';
import { settledMemory } from '../support/memory.js';
import { memoryBreakdown, type MemoryBreakdown } from '../support/memory-breakdown.js';
import { connectRawTls, listenRawTls, type ListenMode, type RawTlsListener } from '../support/raw-tls.js';

let listener: RawTlsListener | undefined;
const held: TLSSocket[] = [];

export const operations = {
  async listen({ identity, mode, host }: { identity: CertificateIdentity; mode: ListenMode; host?: string }): Promise<number> {
    listener = await listenRawTls(identity, mode, host);
    return listener.port;
  },

  /** Opens `count` idle connections to `port`, `window` handshakes at a time. */
  async hold({ identity, port, count, window }: { identity: CertificateIdentity; port: number; count: number; window: number }): Promise<number> {
    let next = 0;
    const connectWindow = async () => {
      while (next < count) {
        next++;
        const socket = await connectRawTls(identity, port);
        socket.on('error', () => {}); // the listener is killed at the end
        held.push(socket);
      }
    };
    await Promise.all(Array.from({ length: Math.min(window, count) }, connectWindow));
    return held.length;
  },

  async open(): Promise<number> {
    return listener?.open() ?? held.filter((socket) => !socket.closed).length;
  },

  async memory(): Promise<{ rss: number; heapUsed: number }> {
    return settledMemory();
  },

  /** Where the memory is, after GC (bench/experiments/fleet-memory.ts). */
  async breakdown(): Promise<MemoryBreakdown> {
    await settledMemory();
    return memoryBreakdown();
  },
};

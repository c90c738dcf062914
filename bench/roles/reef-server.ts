/**
 * Worker role: a real Reef server in a process of its own, so that its memory can be
 * measured alone and it can be killed and started again (fleet, reconnect).
 */
import { registerMachines, startBenchServer, type BenchServer, type BenchServerOptions, type MachineToRegister } from '../support/reef-server.js';
import { settledMemory } from '../support/memory.js';
import { gzipSync } from 'node:zlib';

let running: BenchServer | undefined;
/** Tentacle connections this process accepted, by whether the TLS handshake resumed a session. */
const handshakes = { resumed: 0, full: 0 };

export const operations = {
  async start(options: BenchServerOptions & { machines?: MachineToRegister[] }): Promise<{ thumbprint: string; commsPort: number; httpsPort: number; dataDir: string }> {
    running = await startBenchServer(options);
    running.server.comms.on('connected', (client) => void (client.peer.resumed ? handshakes.resumed++ : handshakes.full++));
    await registerMachines(running.server, options.machines ?? []);
    const { server, thumbprint, dataDir } = running;
    return { thumbprint, commsPort: server.commsPort, httpsPort: server.httpsPort, dataDir };
  },

  /** Live tentacle connections. */
  async links(): Promise<number> {
    return running?.server.comms.links.size ?? 0;
  },

  /** Connections accepted since the start, by whether their TLS handshake was resumed or full. */
  async handshakes(): Promise<{ resumed: number; full: number }> {
    return { ...handshakes };
  },

  /** CPU time this process has used so far (user + system), in ms. */
  async cpuMs(): Promise<number> {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  },

  /** Renders /metrics `count` times, one after the other: each render's ms, and the text's size plain and gzipped. */
  async scrape({ count }: { count: number }): Promise<{ ms: number[]; bytes: number; gzipBytes: number }> {
    const metrics = running!.server.metrics;
    const ms: number[] = [];
    let text = '';
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      text = await metrics.render();
      ms.push(performance.now() - started);
    }
    return { ms, bytes: Buffer.byteLength(text), gzipBytes: gzipSync(text).length };
  },

  async memory(): Promise<{ rss: number; heapUsed: number }> {
    return settledMemory();
  },
};

/**
 * Worker role: a real Reef server in a process of its own, so that its memory can be
 * measured alone and it can be killed and started again (fleet, reconnect).
 */
import { registerMachines, startBenchServer, type BenchServer, type BenchServerOptions, type MachineToRegister } from '../support/reef-server.js';
import { settledMemory } from '../support/memory.js';
import { memoryBreakdown, type MemoryBreakdown } from '../support/memory-breakdown.js';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import Database, { type Statement } from 'better-sqlite3';

let running: BenchServer | undefined;
/** SQL text → executions, while tracing (bench/experiments/fleet-memory.ts --trace-sql). */
let traced: Map<string, number> | undefined;
/** Tentacle connections this process accepted, by whether the TLS handshake resumed a session. */
const handshakes = { resumed: 0, full: 0 };

export const operations = {
  async start(options: BenchServerOptions & { machines?: MachineToRegister[]; withoutConnected?: string[] }): Promise<{ thumbprint: string; commsPort: number; httpsPort: number; dataDir: string; apiKey: string }> {
    running = await startBenchServer(options);
    // Experiments (bench/experiments/fleet-memory.ts): the server's own per-connection work
    // left out, each 'connected' listener picked by a word of its source text.
    for (const listener of running.server.comms.listeners('connected')) {
      const source = String(listener);
      if (options.withoutConnected?.some((word) => source.includes(word))) running.server.comms.off('connected', listener as never);
    }
    running.server.comms.on('connected', (client) => void (client.peer.resumed ? handshakes.resumed++ : handshakes.full++));
    await registerMachines(running.server, options.machines ?? []);
    const { server, thumbprint, dataDir, apiKey } = running;
    return { thumbprint, commsPort: server.commsPort, httpsPort: server.httpsPort, dataDir, apiKey };
  },

  /** Counts every SQLite statement this process executes from now on, by its text. */
  async traceSql(): Promise<void> {
    traced = new Map();
    const probe = new Database(':memory:');
    const prototype = Object.getPrototypeOf(probe.prepare('SELECT 1')) as Record<string, (this: Statement, ...args: unknown[]) => unknown>;
    probe.close();
    for (const method of ['run', 'get', 'all', 'iterate']) {
      const original = prototype[method]!;
      prototype[method] = function (this: Statement, ...args: unknown[]) {
        traced?.set(this.source, (traced.get(this.source) ?? 0) + 1);
        return original.apply(this, args);
      };
    }
  },

  /**
   * The statements counted since traceSql, most executed first, each with the opcodes of its
   * plan that build a temporary b-tree (an ephemeral table, an automatic index) or a sorter:
   * each of those allocates a page cache of its own and frees it when the statement ends.
   */
  async tracedSql(): Promise<{ sql: string; count: number; temporary: string[] }[]> {
    const db = new Database(join(running!.dataDir, 'reef.db'), { readonly: true });
    try {
      return [...(traced ?? [])].sort((a, b) => b[1] - a[1]).map(([sql, count]) => ({ sql: sql.replace(/\s+/g, ' '), count, temporary: temporaryOpcodes(db, sql) }));
    } finally {
      db.close();
    }
  },

  /** The source text of each 'connected' listener (what `withoutConnected` can pick). */
  async connectedListeners(): Promise<string[]> {
    return running!.server.comms.listeners('connected').map(String);
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

  /** What /metrics sends now (before gzip). */
  async metricsText(): Promise<string> {
    return running!.server.metrics.render();
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

const TEMPORARY_OPCODES = new Set(['OpenEphemeral', 'OpenAutoindex', 'SorterOpen', 'OpenDup']);

function temporaryOpcodes(db: Database.Database, sql: string): string[] {
  let explain: Statement;
  try {
    explain = db.prepare(`EXPLAIN ${sql}`);
  } catch (err) {
    return [`(cannot explain: ${(err as Error).message})`];
  }
  // Parameters unbound are NULL; better-sqlite3 wants them all the same.
  for (let params = 0; params <= 500; params++) {
    try {
      const rows = explain.all(...new Array(params).fill(null)) as { opcode: string }[];
      return [...new Set(rows.map((row) => row.opcode).filter((opcode) => TEMPORARY_OPCODES.has(opcode)))];
    } catch (err) {
      if (!/Too few parameter/.test((err as Error).message)) return [`(cannot explain: ${(err as Error).message})`];
    }
  }
  return ['(too many parameters)'];
}

/**
 * Worker role for bench/experiments/fleet-memory.ts: a `CommsServer` alone (no store, task
 * engine or API) holding polling Tentacles, with optional work per new connection, to
 * tell which part of the real server's memory per link comes from what.
 */
import Database from 'better-sqlite3';
import { CommsServer } from '../../src/comms/index.js';
import type { CertificateIdentity } from '../../src/pki/certificate.js';
import { memoryBreakdown, type MemoryBreakdown } from '../support/memory-breakdown.js';
import { settledMemory } from '../support/memory.js';

/** What the server does when a Tentacle connects, besides holding it. */
export type PerConnection = 'nothing' | 'select' | 'select-later' | 'ping';

let comms: CommsServer | undefined;

export const operations = {
  async start({ identity, perConnection }: { identity: CertificateIdentity; perConnection: PerConnection }): Promise<{ commsPort: number; thumbprint: string }> {
    comms = new CommsServer({ identity, trust: () => true });
    const db = new Database(':memory:');
    const select = db.prepare('SELECT 1 AS one');
    let pending = 0;
    comms.on('connected', (client) => {
      if (perConnection === 'select') select.get();
      // One statement for many connections, once the burst has passed.
      else if (perConnection === 'select-later' && pending++ === 0)
        setTimeout(() => {
          pending = 0;
          select.get();
        }, 200);
      else if (perConnection === 'ping') void client.call('health.ping', {}).catch(() => {});
    });
    return { commsPort: await comms.listen(0, '127.0.0.1'), thumbprint: identity.thumbprint };
  },

  async links(): Promise<number> {
    return comms?.links.size ?? 0;
  },

  async memory(): Promise<{ rss: number; heapUsed: number }> {
    return settledMemory();
  },

  async breakdown(): Promise<MemoryBreakdown> {
    await settledMemory();
    return memoryBreakdown();
  },
};

/**
 * Worker role: simulated polling Tentacles. Each is the real agent (`startAgent`: poll
 * loop with backoff, pinned mutual TLS, HTTP/2 RPC host, script and file services) with a
 * home directory of its own; thousands share one process so a fleet fits on a small
 * machine. They connect a window at a time, as a fleet coming online would, not in one
 * burst that only measures the listen backlog.
 */
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { dialSecure } from '../../src/comms/dialer.js';
import type { CertificateIdentity } from '../../src/pki/certificate.js';
import { startAgent, type Agent } from '../../src/tentacle/agent.js';
import { defaultConfig, type TentacleConfig } from '../../src/tentacle/config.js';
import { pollTargetFor } from '../../src/tentacle/network.js';
import { settledMemory, type Memory } from '../support/memory.js';
import { timeEach } from '../support/stats.js';

export interface TentacleGroup {
  /** Tentacle i uses identities[i % identities.length]. */
  identities: CertificateIdentity[];
  count: number;
  serverThumbprint: string;
  /** As in a tentacle's config: tcp://127.0.0.1:PORT, https://NAME:PORT, wss://127.0.0.1:PORT/reef/comms. */
  address: string;
  /** Fixed addresses for names (the config's `resolve`, curl's --resolve). */
  resolve?: Record<string, string>;
  /** An HTTP CONNECT proxy on 127.0.0.1 to poll through. */
  proxyPort?: number;
  /** Home directories go under this directory. */
  root: string;
  /** Tentacles connecting at the same time. */
  window: number;
  /** A tentacle not connected within this long fails the start. */
  connectTimeoutMs: number;
}

const agents: Agent[] = [];
/** Failed connection attempts of this process's tentacles, by error code. */
const failures: Record<string, number> = {};

type PollSettings = Pick<TentacleGroup, 'serverThumbprint' | 'address' | 'resolve' | 'proxyPort'>;

/** A tentacle's config as `tentacle register-with` and `polling-proxy` would leave it. */
function configFor(name: string, home: string, group: PollSettings): TentacleConfig {
  return {
    ...defaultConfig(name, home),
    trust: [group.serverThumbprint],
    servers: [{ thumbprint: group.serverThumbprint, address: group.address }],
    resolve: group.resolve,
    // Loopback only: an HTTPS_PROXY in the environment must not capture the fleet.
    pollingProxy: group.proxyPort ? { host: '127.0.0.1', port: group.proxyPort } : { enabled: false },
  };
}

async function startOne(group: TentacleGroup, identity: CertificateIdentity): Promise<string> {
  const name = `t${agents.length}`;
  const home = join(group.root, name);
  // Pushes go to <home>/Applications, the one root a default config allows file transfers in; it must exist when the agent starts.
  await mkdir(join(home, 'Applications'), { recursive: true });
  const agent = await startAgent({ config: configFor(name, home, group), identity });
  agents.push(agent);
  const [poller] = agent.pollers.values();
  if (!poller) throw new Error(`tentacle ${name} is not polling ${group.address}`);
  poller.on('failed', (err) => {
    const code = (err as { code?: string }).code ?? 'unknown';
    failures[code] = (failures[code] ?? 0) + 1;
  });
  if (poller.connected) return home;
  const timeout = AbortSignal.timeout(group.connectTimeoutMs);
  await once(poller, 'connected', { signal: timeout }).catch(() => {
    throw new Error(`tentacle ${name} did not connect to ${group.address} within ${group.connectTimeoutMs} ms`);
  });
  return home;
}

export const operations = {
  /** Starts `count` more tentacles; resolves with their homes once every one of them has connected. */
  async start(group: TentacleGroup): Promise<{ homes: string[] }> {
    const homes: string[] = [];
    let next = 0;
    const connectWindow = async () => {
      while (next < group.count) {
        const index = next++;
        homes[index] = await startOne(group, group.identities[index % group.identities.length]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(group.window, group.count) }, connectWindow));
    return { homes };
  },

  /** This process's memory after GC (the simulated fleet's own cost, to size a run by). */
  async memory(): Promise<Memory> {
    return settledMemory();
  },

  /** CPU time this process has used so far (user + system), in ms. */
  async cpuMs(): Promise<number> {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  },

  /** Failed connection attempts so far, by error code (a restarted server refuses some while down). */
  async failures(): Promise<Record<string, number>> {
    return { ...failures };
  },

  /**
   * Connection set-up as a polling tentacle does it (its poll target, dialer, pinning and
   * the server's verdict), `count` times one after the other, each a fresh TLS handshake
   * closed at once; resolves with each duration in ms.
   */
  async timeConnects({ identity, count, ...settings }: PollSettings & { identity: CertificateIdentity; count: number }): Promise<number[]> {
    const config = configFor('dialer', '/nonexistent', settings);
    const target = pollTargetFor(config.servers[0]!, () => config, () => config.trust);
    return timeEach(count, async () => {
      const { socket } = await dialSecure({
        identity,
        host: target.host,
        port: target.port,
        servername: target.servername,
        transport: target.transport,
        expected: config.trust,
        carrier: target.carrier,
        handshakeTimeoutMs: 10_000,
        explainMismatch: (presented) => `unexpected server thumbprint ${presented}`,
      });
      socket.destroy();
    });
  },
};

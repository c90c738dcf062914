/** A real server in-process and Tentacle agents with config files, for the rotation tests. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import { generateCertificate } from '../../src/pki/certificate.js';
import { startReefServer, type RunningServer, type ServerSettings } from '../../src/server/runtime.js';
import { startAgent, type Agent } from '../../src/tentacle/agent.js';
import { defaultConfig, readConfigFile, writeConfigFile } from '../../src/tentacle/config.js';

export interface RotationBench {
  server: RunningServer;
  /** An admin client accepting the given thumbprints (comma-separated); default the server's first. */
  api(pins?: string): ApiClient;
  /** Registers a polling machine and writes its Tentacle's config; `start` runs its agent. */
  tentacle(name: string): Promise<{ configPath: string; start(): Promise<Agent> }>;
  close(): Promise<void>;
}

export async function startRotationBench(settings: Partial<ServerSettings> = {}): Promise<RotationBench> {
  const dir = await mkdtemp(join(tmpdir(), 'reef-rotation-'));
  const server = await startReefServer({ dataDir: join(dir, 'data'), httpsPort: 0, commsPort: 0, host: '127.0.0.1', ...settings });
  const first = server.info.commsThumbprint;
  const agents: Agent[] = [];
  return {
    server,
    api: (pins = first) => new ApiClient({ server: `https://127.0.0.1:${server.httpsPort}`, apiKey: server.initialAdminKey!, serverThumbprint: pins }),
    async tentacle(name) {
      const identity = await generateCertificate(name);
      await server.store.createMachine({ name, kind: 'target', thumbprint: identity.thumbprint, commsStyle: 'polling', environments: ['Test'], roles: ['web'] });
      const home = join(dir, name);
      await mkdir(home, { recursive: true });
      const config = defaultConfig(name, home);
      config.trust = [server.info.commsThumbprint];
      config.servers = [{ thumbprint: server.info.commsThumbprint, address: `tcp://127.0.0.1:${server.commsPort}` }];
      const configPath = join(home, 'tentacle.json');
      await writeConfigFile(configPath, config);
      return {
        configPath,
        start: async () => {
          const agent = await startAgent({ config: await readConfigFile(configPath), identity, configPath, configPollMs: 50 });
          agents.push(agent);
          return agent;
        },
      };
    },
    async close() {
      for (const agent of agents) await agent.close();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function until<T>(what: string, check: () => Promise<T | false | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export const trustOf = async (configPath: string): Promise<string[]> => (await readConfigFile(configPath)).trust;

/**
 * A whole server certificate rotation in-process (the quick version of
 * test/e2e/certificate-rotation.slow.test.ts): a real server and two in-process agents
 * with config files. Grace 0, so nothing waits on a timer.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import type { CertificateRotationView } from '../../src/api/contract.js';
import { generateCertificate, type CertificateIdentity } from '../../src/pki/certificate.js';
import { startReefServer, type RunningServer } from '../../src/server/runtime.js';
import { startAgent, type Agent } from '../../src/tentacle/agent.js';
import { defaultConfig, readConfigFile, writeConfigFile } from '../../src/tentacle/config.js';

let dir: string;
let server: RunningServer;
let api: ApiClient;
const agents: Agent[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reef-rotation-'));
  server = await startReefServer({ dataDir: join(dir, 'data'), httpsPort: 0, commsPort: 0, host: '127.0.0.1' });
  api = new ApiClient({ server: `https://127.0.0.1:${server.httpsPort}`, apiKey: server.initialAdminKey!, serverThumbprint: server.info.commsThumbprint });
});

after(async () => {
  for (const agent of agents) await agent.close();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

async function tentacle(name: string): Promise<{ configPath: string; start(): Promise<Agent> }> {
  const identity: CertificateIdentity = await generateCertificate(name);
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
}

async function until<T>(what: string, check: () => Promise<T | false | undefined>): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const trustOf = async (configPath: string) => (await readConfigFile(configPath)).trust;

test('the online Tentacle ends on the new certificate with the old dropped; the offline one gets in afterwards and does the same', async () => {
  const online = await tentacle('online-1');
  const offline = await tentacle('offline-1');
  const onlineAgent = await online.start();
  await until('online-1 to connect', async () => [...onlineAgent.pollers.values()][0]!.connected);
  const old = server.info.commsThumbprint;

  const started = await api.json<CertificateRotationView>('POST', '/api/server/certificate-rotation', { body: { graceSeconds: 0 } });
  const next = started.newThumbprint;
  await until('online-1 to trust the new thumbprint', async () => (await trustOf(online.configPath)).includes(next));
  const status = await api.json<CertificateRotationView>('GET', '/api/server/certificate-rotation');
  assert.deepEqual([status.machines, status.trusting], [2, 1]);
  assert.deepEqual(status.notTrusting.map((m) => m.name), ['offline-1']);
  assert.equal(server.info.commsThumbprint, old, 'still the old certificate until completion');

  const both = new ApiClient({ server: `https://127.0.0.1:${server.httpsPort}`, apiKey: server.initialAdminKey!, serverThumbprint: `${old},${next}` });
  await both.json('POST', '/api/server/certificate-rotation/complete');
  assert.equal(server.info.commsThumbprint, next);
  await until('online-1 to drop the old thumbprint', async () => JSON.stringify(await trustOf(online.configPath)) === JSON.stringify([next]));
  await until('online-1 to be connected again', async () => server.comms.links.size === 1 && server.comms.links.all()[0]!.peer.presented === next);

  await offline.start();
  await until('offline-1 to trust only the new thumbprint', async () => JSON.stringify(await trustOf(offline.configPath)) === JSON.stringify([next]));
  await until('both on the new certificate', async () => server.comms.links.all().length === 2 && server.comms.links.all().every((c) => c.peer.presented === next));
  const final = await both.json<CertificateRotationView>('GET', '/api/server/certificate-rotation');
  assert.deepEqual([final.trusting, final.dropped, final.notTrusting.length], [2, 2, 0]);

  // Every step is in the audit log: who started and completed it, and each Tentacle's confirmations.
  const kinds = async (filter: string) => (await both.json<{ items: { kind: string; actor: { kind: string }; target: { name: string } | null }[] }>('GET', `/api/audit?kind=${filter}`)).items;
  assert.deepEqual((await kinds('server')).map((e) => [e.kind, e.actor.kind]).filter(([k]) => k!.startsWith('server.certificate')).reverse(), [
    ['server.certificate-rotation-started', 'api-key'],
    ['server.certificate-rotation-completed', 'api-key'],
  ]);
  const machines = await kinds('machine');
  for (const [kind, count] of [['machine.server-certificate-trusted', 2], ['machine.server-certificate-dropped', 2]] as const) {
    assert.deepEqual(machines.filter((e) => e.kind === kind).map((e) => e.target!.name).sort(), ['offline-1', 'online-1'].slice(0, count), kind);
  }
});

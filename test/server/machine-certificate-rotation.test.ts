/**
 * Tentacle certificate rotation in-process (the quick version of
 * test/e2e/machine-certificate-rotation.slow.test.ts): a real server, agents with config
 * files and their certificates in their home folders, one polling and one listening.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/client.js';
import type { TaskView } from '../../src/api/contract.js';
import { TentacleComms } from '../../src/comms/index.js';
import { generateCertificate, type CertificateIdentity } from '../../src/pki/certificate.js';
import { identityFiles, loadIdentity, saveIdentity } from '../../src/pki/identity-files.js';
import { startReefServer, type RunningServer } from '../../src/server/runtime.js';
import { silentLogger } from '../../src/logging.js';
import { startAgent, type Agent } from '../../src/tentacle/agent.js';
import { CertificateRotationService } from '../../src/tentacle/certificate-rotation.js';
import { defaultConfig, writeConfigFile } from '../../src/tentacle/config.js';
import { freePort } from '../e2e/harness.js';
import { until } from './certificate-rotation-harness.js';

let dir: string;
let server: RunningServer;
let api: ApiClient;
const agents: Agent[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tcert-rotation-'));
  server = await startReefServer({ dataDir: join(dir, 'data'), httpsPort: 0, commsPort: 0, host: '127.0.0.1', limits: { pickupTimeoutMs: 10_000 } });
  api = new ApiClient({ server: `https://127.0.0.1:${server.httpsPort}`, apiKey: server.initialAdminKey!, serverThumbprint: server.info.commsThumbprint });
});
after(async () => {
  for (const agent of agents) await agent.close();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A Tentacle with its certificate in its home, registered polling or listening, its agent running. */
async function tentacle(name: string, style: 'polling' | 'listening', options: { next?: CertificateIdentity; workerPool?: string } = {}) {
  const identity = await generateCertificate(name);
  const home = join(dir, name);
  await mkdir(home, { recursive: true });
  await saveIdentity(home, identity, 'comms');
  if (options.next) await saveIdentity(home, options.next, 'comms-next');
  const config = defaultConfig(name, home);
  config.trust = [server.info.commsThumbprint];
  if (style === 'polling') config.servers = [{ thumbprint: server.info.commsThumbprint, address: `tcp://127.0.0.1:${server.commsPort}` }];
  else config.listen = { ...config.listen, enabled: true, host: '127.0.0.1', port: await freePort() };
  const configPath = join(home, 'tentacle.json');
  await writeConfigFile(configPath, config);
  const agent = await startAgent({ config, identity, configPath, configPollMs: 50 });
  agents.push(agent);
  const membership = options.workerPool ? { kind: 'worker' as const, workerPools: [options.workerPool] } : { kind: 'target' as const, environments: ['Test'], roles: [name] };
  const machine = await server.store.createMachine({
    name, thumbprint: identity.thumbprint, commsStyle: style, ...membership,
    ...(style === 'listening' ? { endpoint: { host: '127.0.0.1', port: agent.listeningPort! } } : {}),
  });
  if (style === 'polling') await until(`${name} to connect`, async () => server.comms.links.connections(identity.thumbprint).length > 0);
  return { identity, home, agent, machine };
}

async function rotate(target: Record<string, unknown>, maxParallel?: number): Promise<TaskView> {
  const created = await api.json<TaskView>('POST', '/api/tasks', { body: { kind: 'rotate-machine-certificate', target, ...(maxParallel ? { maxParallel } : {}) } });
  return until(`task ${created.id} to finish`, async () => {
    const task = await api.json<TaskView>('GET', `/api/tasks/${created.id}`);
    return ['Success', 'Failed', 'Cancelled', 'TimedOut'].includes(task.state) && task;
  }, 30_000);
}

const logOf = async (taskId: string) =>
  (await api.json<{ items: { text: string }[] }>('GET', `/api/tasks/${taskId}/log`)).items.map((l) => l.text).join('\n');

test('polling and listening Tentacles get new certificates; the old ones are revoked and refused', async () => {
  const polling = await tentacle('tcert-poll', 'polling');
  const listening = await tentacle('tcert-listen', 'listening');
  const task = await rotate({ environment: 'Test' });
  assert.equal(task.state, 'Success', await logOf(task.id));

  for (const t of [polling, listening]) {
    const machine = (await server.store.getMachine(t.machine.id))!;
    const onDisk = await loadIdentity(t.home, 'comms');
    assert.notEqual(machine.thumbprint, t.identity.thumbprint, `${t.machine.name}: a new thumbprint`);
    assert.equal(machine.thumbprint, onDisk.thumbprint, `${t.machine.name}: the store has the certificate the Tentacle presents`);
    assert.equal(machine.nextThumbprint, null);
    assert.equal(await server.store.getMachineByThumbprint(t.identity.thumbprint), null, 'the old thumbprint is no machine’s');
    // The new files are private; the next and previous ones are gone once confirmed.
    assert.equal((await stat(identityFiles(t.home, 'comms').keyFile)).mode & 0o777, 0o600);
    await assert.rejects(stat(identityFiles(t.home, 'comms-next').certFile));
    await until(`${t.machine.name} to forget its previous certificate`, async () => !(await stat(identityFiles(t.home, 'comms-previous').certFile).catch(() => null)));
  }
  // The polling one is connected again on its new certificate, nothing on the old one.
  const pollingNow = (await server.store.getMachine(polling.machine.id))!.thumbprint;
  await until('the polling Tentacle to be connected on its new certificate', async () => server.comms.links.connections(pollingNow).length > 0);
  assert.equal(server.comms.links.connections(polling.identity.thumbprint).length, 0);

  // A health check reaches both on their new certificates.
  const health = await api.json<TaskView>('POST', '/api/tasks', { body: { kind: 'health-check', target: { environment: 'Test' } } });
  await until('the health check to succeed', async () => (await api.json<TaskView>('GET', `/api/tasks/${health.id}`)).state === 'Success', 30_000);

  // Whoever still holds the old certificate is turned away.
  const refused: string[] = [];
  const onRefused = (_carrier: string, reason: string) => refused.push(reason);
  server.comms.on('refused', onRefused);
  const impostor = new TentacleComms({ identity: polling.identity, services: new Map() });
  try {
    impostor.poll({ host: '127.0.0.1', port: server.commsPort, carrier: 'tcp', trusted: () => [server.info.commsThumbprint] });
    await until('the old certificate to be refused', async () => refused.length > 0);
  } finally {
    server.comms.off('refused', onRefused);
    await impostor.close();
  }
  assert.equal(server.comms.links.connections(polling.identity.thumbprint).length, 0);

  const log = await logOf(task.id);
  assert.match(log, /made its new certificate/);
  assert.match(log, /Done: the machine's certificate is now/);
  const audit = await api.json<{ items: { kind: string; target: { name: string } | null; details: Record<string, unknown> }[] }>('GET', '/api/audit?kind=machine.certificate-rotated');
  assert.deepEqual(audit.items.map((e) => e.target!.name).sort(), ['tcert-listen', 'tcert-poll']);
  assert.equal(audit.items.find((e) => e.target!.name === 'tcert-poll')!.details.previous, polling.identity.thumbprint);
});

test('a next certificate already registered to another machine is refused, and nothing changes', async () => {
  const other = await tentacle('tcert-other', 'polling');
  // A Tentacle whose "next" certificate is a copy of another machine's.
  const copycat = await tentacle('tcert-copycat', 'polling', { next: other.identity });
  const task = await rotate({ machines: ['tcert-copycat'] });
  assert.equal(task.state, 'Failed');
  assert.match(task.machines[0]!.error ?? '', /already the certificate of machine "tcert-other"/);
  const machine = (await server.store.getMachine(copycat.machine.id))!;
  assert.deepEqual([machine.thumbprint, machine.nextThumbprint], [copycat.identity.thumbprint, null]);
  assert.equal((await loadIdentity(copycat.home, 'comms')).thumbprint, copycat.identity.thumbprint, 'the Tentacle was not told to switch');
  assert.equal((await server.store.getMachine(other.machine.id))!.thumbprint, other.identity.thumbprint);
});

test("a machine's pending thumbprint is that machine's only: connecting with it confirms it for that machine", async () => {
  const a = await tentacle('tcert-a', 'polling');
  const b = await tentacle('tcert-b', 'polling');
  const pending = await generateCertificate('pending');
  await server.store.setNextThumbprint(a.machine.id, pending.thumbprint);
  await assert.rejects(server.store.setNextThumbprint(b.machine.id, pending.thumbprint), (err: Error & { code?: string }) => err.code === 'REEF_THUMBPRINT_TAKEN');
  const holder = new TentacleComms({ identity: pending, services: new Map() });
  try {
    holder.poll({ host: '127.0.0.1', port: server.commsPort, carrier: 'tcp', trusted: () => [server.info.commsThumbprint] });
    await until('the pending thumbprint to be confirmed for a', async () => (await server.store.getMachine(a.machine.id))!.thumbprint === pending.thumbprint);
  } finally {
    await holder.close();
  }
  assert.equal((await server.store.getMachine(b.machine.id))!.thumbprint, b.identity.thumbprint, 'b is untouched');
  // a's old link was closed when its certificate was revoked.
  await until("a's old link to be closed", async () => server.comms.links.connections(a.identity.thumbprint).length === 0);
});

test('only a role with machines:certificate may start a rotation; an operator may not', async () => {
  const made = await api.json<{ key: string }>('POST', '/api/apikeys', { body: { name: 'tcert-operator', role: 'operator' } });
  const operator = new ApiClient({ server: `https://127.0.0.1:${server.httpsPort}`, apiKey: made.key, serverThumbprint: server.info.commsThumbprint });
  const before = (await server.store.listTasks()).length;
  await assert.rejects(
    operator.json('POST', '/api/tasks', { body: { kind: 'rotate-machine-certificate', target: { all: true } } }),
    (err: Error & { code?: string }) => err.code === 'REEF_FORBIDDEN' && /machines:certificate|rotate Tentacles' certificates/.test(err.message),
  );
  assert.equal((await server.store.listTasks()).length, before, 'nothing was stored');
});

test('a worker pool means every worker in it, and --max-parallel 1 rotates them one after another', async () => {
  const workers = [await tentacle('tcert-w1', 'polling', { workerPool: 'Rotating' }), await tentacle('tcert-w2', 'polling', { workerPool: 'Rotating' }), await tentacle('tcert-w3', 'polling', { workerPool: 'Rotating' })];
  const task = await rotate({ workerPool: 'Rotating' }, 1);
  assert.equal(task.state, 'Success', await logOf(task.id));
  assert.equal(task.machines.length, 3);
  for (const w of workers) assert.notEqual((await server.store.getMachine(w.machine.id))!.thumbprint, w.identity.thumbprint);
  // One at a time: each machine's first step comes after the previous one's last (a run
  // waiting for its turn says so first).
  const lines = (await api.json<{ items: { text: string; machineId: string | null }[] }>('GET', `/api/tasks/${task.id}/log`)).items;
  const spans = workers.map((w) => {
    const mine = lines.map((l, i) => [l, i] as const).filter(([l]) => l.machineId === w.machine.id && !l.text.startsWith('Waiting for a turn'));
    return [mine[0]![1], mine.at(-1)![1]] as const;
  }).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) assert.ok(spans[i]![0] > spans[i - 1]![1], `machine runs overlapped: ${JSON.stringify(spans)}`);
});

test('a listening Tentacle that switched without the server seeing it is still reached, and the dial confirms its new certificate', async () => {
  const t = await tentacle('tcert-listen-2', 'listening');
  // What a run cut off right after the switch leaves: next recorded, the Tentacle on it, nothing confirmed.
  const service = new CertificateRotationService({ home: t.home, commonName: 'Reef Tentacle test', onSwitch: (identity) => t.agent.comms.setIdentity(identity), logger: silentLogger });
  const { next } = await service.prepareNext();
  await server.store.setNextThumbprint(t.machine.id, next!);
  await service.switchTo(next!);
  const health = await api.json<TaskView>('POST', '/api/tasks', { body: { kind: 'health-check', target: { machines: ['tcert-listen-2'] } } });
  await until('the health check to succeed', async () => (await api.json<TaskView>('GET', `/api/tasks/${health.id}`)).state === 'Success', 30_000);
  const machine = (await server.store.getMachine(t.machine.id))!;
  assert.deepEqual([machine.thumbprint, machine.nextThumbprint], [next, null]);
});

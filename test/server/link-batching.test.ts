/**
 * A burst of Tentacles connecting to a real server at once: their presence rows and last
 * contacts are written in batches (write-batch.ts), and work waiting for each still
 * reaches it; when they leave, their rows go.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TentacleComms, type Handler } from '../../src/comms/index.js';
import { silentLogger } from '../../src/logging.js';
import { generateCertificate } from '../../src/pki/certificate.js';
import { startReefServer } from '../../src/server/runtime.js';
import { waitFor } from '../e2e/harness.js';

const COUNT = 12;
const FINAL = ['Success', 'Failed', 'Cancelled', 'TimedOut'];

test('work created before a burst of Tentacles connects reaches each of them; presence and last contact are recorded for all, and removed when they leave', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'resume-burst-'));
  const server = await startReefServer({ dataDir, httpsPort: 0, commsPort: 0, host: '127.0.0.1', logger: silentLogger });
  const identities = await Promise.all(Array.from({ length: COUNT }, (_, i) => generateCertificate(`Tentacle ${i}`)));
  const tentacles: TentacleComms[] = [];
  try {
    for (const [i, identity] of identities.entries()) {
      await server.store.createMachine({ name: `burst-${i}`, kind: 'target', thumbprint: identity.thumbprint, commsStyle: 'polling', environments: ['Burst'], roles: ['web'] });
    }
    const task = await server.engine.createTask({ kind: 'run-script', target: { machines: identities.map((_, i) => `burst-${i}`) }, script: { syntax: 'sh', body: 'echo hi' } });

    const services = new Map<string, Handler>([
      ['scripts.start', async (args) => ({ ticket: (args as { ticket: string }).ticket, state: 'Running' })],
      ['scripts.status', async (args) => ({ ticket: (args as { ticket: string }).ticket, state: 'Complete', exitCode: 0, cancelled: false, lines: [], nextSeq: 1, more: false })],
      ['scripts.complete', async (args) => ({ ticket: (args as { ticket: string }).ticket })],
    ]);
    const connecting = identities.map((identity) => {
      const comms = new TentacleComms({ identity, services });
      tentacles.push(comms);
      return once(comms.poll({ host: '127.0.0.1', port: server.commsPort, carrier: 'tcp', trusted: () => [server.info.commsThumbprint] }), 'connected');
    });
    await Promise.all(connecting);

    const done = await waitFor('the task to finish', async () => {
      const current = await server.store.getTask(task.id);
      return current && FINAL.includes(current.state) ? current : undefined;
    });
    assert.equal(done.state, 'Success');
    assert.deepEqual(done.machines.map((m) => m.state), identities.map(() => 'Success'));

    const links = await waitFor('every link recorded', async () => {
      const all = await server.store.coordination.listLinks(60_000);
      return all.length === COUNT ? all : undefined;
    });
    assert.deepEqual(new Set(links.map((l) => l.thumbprint)), new Set(identities.map((id) => id.thumbprint)));
    await waitFor('every contact recorded', async () => ((await server.store.listMachines({ environment: 'Burst' })).every((m) => m.lastSeenAt && m.carrier === 'tcp') ? true : undefined));

    await Promise.all(tentacles.splice(0).map((comms) => comms.close()));
    await waitFor('every link removed', async () => ((await server.store.coordination.listLinks(60_000)).length === 0 ? true : undefined));
  } finally {
    await Promise.all(tentacles.map((comms) => comms.close()));
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});

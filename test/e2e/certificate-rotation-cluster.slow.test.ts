/**
 * Server certificate rotation on a two-node cluster (PostgreSQL): started and completed
 * through node-a while the Tentacles poll node-b, which learns of both steps through the
 * database. The online Tentacle ends on the new certificate with the old thumbprint
 * dropped; one offline throughout gets in on node-b by asking for the old certificate.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiClient } from '../../src/api/client.js';
import type { CertificateRotationView, MachineView, ServerInfo } from '../../src/api/contract.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { freePort, ok, startAgent, startServer, stopAll, tempDir, waitFor, type ServerProcess } from './harness.js';

describe('server certificate rotation on two nodes', () => {
  let database: TestDatabase;
  let root: string;
  let nodeA: ServerProcess;
  let nodeB: ServerProcess;
  let apiKey: string;
  const tentacle = (args: string[]) => ok('tentacle', args, { REEF_TENTACLE_ROOT: root });
  const trustOf = async (instance: string): Promise<string[]> => JSON.parse(await tentacle(['show-configuration', '--instance', instance])).trust;
  // Both thumbprints accepted, so these clients work across the switch.
  const api = (node: ServerProcess, pins: string) => new ApiClient({ server: node.url, apiKey, serverThumbprint: pins });
  const online = async (client: ApiClient, name: string) => (await client.json<MachineView>('GET', `/api/machines/${name}`)).online;

  before(async () => {
    database = await createTestDatabase({ empty: true });
    root = await tempDir('rotate-cluster-tentacles');
    const start = async (name: string) =>
      startServer({ dataDir: await tempDir(`rotate-${name}`), httpsPort: await freePort(), commsPort: await freePort(), name: `rotate-${name}`, extraArgs: ['--store', database.url, '--node-name', name] });
    nodeA = await start('node-a');
    nodeB = await start('node-b');
    apiKey = nodeA.adminKey!;
    assert.equal(nodeB.thumbprint, nodeA.thumbprint, 'the nodes share one certificate');
    for (const instance of ['Online1', 'Offline1']) {
      await tentacle(['create-instance', '--instance', instance]);
      await tentacle(['new-certificate', '--instance', instance]);
      await tentacle(['register-with', '--instance', instance, '--server', nodeB.url, '--server-thumbprint', nodeB.thumbprint, '--apiKey', apiKey,
        '--server-comms-port', String(nodeB.commsPort), '--environment', 'Test', '--role', 'web', '--name', instance.toLowerCase()]);
    }
    await startAgent(root, 'Online1');
    await waitFor('online1 to connect to node-b', () => online(api(nodeB, nodeB.thumbprint), 'online1'));
  });

  after(async () => {
    await stopAll();
    await database?.drop();
  });

  test('started and completed on one node, followed by the other, with a Tentacle online and one offline throughout', async () => {
    const old = nodeA.thumbprint;
    const started = await api(nodeA, old).json<CertificateRotationView>('POST', '/api/server/certificate-rotation', { body: { graceSeconds: 0 } });
    const next = started.newThumbprint;
    const both = `${old},${next}`;
    // node-b hears of it through the database and tells the Tentacle connected to it.
    await waitFor('online1 (on node-b) to trust the new thumbprint', async () => (await trustOf('Online1')).includes(next));

    const completed = await api(nodeA, both).json<CertificateRotationView>('POST', '/api/server/certificate-rotation/complete');
    assert.equal(completed.state, 'completed');
    await waitFor('node-b to present the new certificate', async () => (await api(nodeB, both).json<ServerInfo>('GET', '/api')).commsThumbprint === next);
    assert.equal((await ok('reef', ['server', 'show-thumbprint', '--store', database.url])).trim(), next, 'the shared certificate is the new one');
    await api(nodeB, next).json('GET', '/api/ping'); // the HTTPS port presents it too

    await waitFor('online1 to trust only the new thumbprint', async () => JSON.stringify(await trustOf('Online1')) === JSON.stringify([next]));
    await waitFor('online1 to be connected on the new certificate', () => online(api(nodeB, next), 'online1'));

    const offline = await startAgent(root, 'Offline1');
    await waitFor('offline1 to trust only the new thumbprint', async () => JSON.stringify(await trustOf('Offline1')) === JSON.stringify([next]));
    await waitFor('offline1 to be connected', () => online(api(nodeB, next), 'offline1'));
    assert.match(offline.log(), /asking it for the trusted one/, 'it got in by asking for the old certificate');

    const status = await api(nodeB, next).json<CertificateRotationView>('GET', '/api/server/certificate-rotation');
    assert.deepEqual([status.machines, status.trusting, status.dropped], [2, 2, 2]);
  });
});

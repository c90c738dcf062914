/**
 * /metrics of a two-node cluster on one real PostgreSQL database: each node reports its
 * own Tentacles and work under its own node name, and the cluster bus's lag and traffic
 * once a notification from the other node has arrived. Both scrapes pass promtool.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { freePort, ok, startAgent, startServer, stopAll, tempDir, waitFor, type ServerProcess } from './harness.js';
import { curlScrape, parseSamples, promtoolCheck, promtoolMissing, total, type Sample } from './metrics.js';

describe('/metrics of two server nodes on one PostgreSQL database', { skip: promtoolMissing() }, () => {
  let database: TestDatabase;
  let a: ServerProcess;
  let b: ServerProcess;
  let apiKey: string;

  async function samples(node: ServerProcess): Promise<Sample[]> {
    const result = await curlScrape(`${node.url}/metrics`, { authorization: `Bearer ${apiKey}` });
    assert.equal(result.status, 200, result.body);
    const checked = await promtoolCheck(result.body);
    assert.equal(checked.code, 0, `promtool check metrics:\n${checked.output}`);
    return parseSamples(result.body);
  }

  before(async () => {
    database = await createTestDatabase();
    const start = async (name: string) =>
      startServer({ dataDir: await tempDir(`metrics-${name}`), httpsPort: await freePort(), commsPort: await freePort(), name, extraArgs: ['--store', database.url, '--node-name', name] });
    a = await start('node-a');
    b = await start('node-b');
    apiKey = a.adminKey!;
    assert.ok(apiKey, 'the first node prints the admin key');
  });

  after(async () => {
    await stopAll();
    await database?.drop();
  });

  test("a Tentacle polling node-b counts on node-b only, and node-a hears of it over the bus", async () => {
    const root = await tempDir('metrics-cluster-tentacles');
    const tentacle = (args: string[]) => ok('tentacle', args, { REEF_TENTACLE_ROOT: root });
    await tentacle(['create-instance', '--instance', 'OnB']);
    await tentacle(['new-certificate', '--instance', 'OnB']);
    await tentacle(['register-with', '--instance', 'OnB', '--server', a.url, '--server-thumbprint', a.thumbprint, '--apiKey', apiKey,
      '--server-comms-port', String(b.commsPort), '--environment', 'Cluster', '--role', 'web', '--name', 'on-b']);
    await startAgent(root, 'OnB');

    // The link is counted when it is up; its announcement on the bus follows (a store write, then NOTIFY).
    const atB = await waitFor('on-b to connect to node-b and node-b to announce it', async () => {
      const now = await samples(b);
      const connected = total(now, 'reef_tentacles_connected', { carrier: 'tcp', node: 'node-b' }) === 1;
      return connected && total(now, 'reef_cluster_bus_notifications_total', { direction: 'sent' }) >= 1 && now;
    });
    assert.equal(total(atB, 'reef_cluster_bus_connected', { node: 'node-b' }), 1);

    // node-b announced the link: node-a received it, with the time it took.
    const atA = await waitFor('node-a to hear from node-b', async () => {
      const now = await samples(a);
      return total(now, 'reef_cluster_bus_lag_seconds_count', { node: 'node-a' }) >= 1 && now;
    });
    assert.equal(total(atA, 'reef_tentacles_connected', { node: 'node-a' }), 0);
    assert.ok(total(atA, 'reef_cluster_bus_notifications_total', { direction: 'received' }) >= 1);
    assert.ok(total(atA, 'reef_cluster_bus_events_total', { direction: 'received' }) >= 1);
    const lagSeconds = total(atA, 'reef_cluster_bus_lag_seconds_sum') / total(atA, 'reef_cluster_bus_lag_seconds_count');
    assert.ok(lagSeconds >= 0 && lagSeconds < 5, `mean bus lag ${lagSeconds} s`);
    assert.ok(total(atA, 'reef_cluster_lease_renewal_age_seconds') < 15, 'node-a renews its leases');
  });
});

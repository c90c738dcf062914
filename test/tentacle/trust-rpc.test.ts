/**
 * trust.add and trust.drop, the Tentacle's part of a server certificate rotation: the agent
 * in-process with a config file, called by a real CommsServer over its pinned link.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommsServer } from '../../src/comms/index.js';
import { isReefError } from '../../src/errors.js';
import { generateCertificate, type CertificateIdentity } from '../../src/pki/certificate.js';
import { callTentacle, connectionEndpoint } from '../../src/server/tentacle-client.js';
import { startAgent } from '../../src/tentacle/agent.js';
import { defaultConfig, readConfigFile, writeConfigFile } from '../../src/tentacle/config.js';

let dir: string;
let serverId: CertificateIdentity;
let tentacleId: CertificateIdentity;
let nextId: CertificateIdentity;

before(async () => {
  [serverId, tentacleId, nextId] = await Promise.all([generateCertificate('Reef Server'), generateCertificate('Tentacle'), generateCertificate('Reef Server next')]);
  dir = await mkdtemp(join(tmpdir(), 'reef-trust-rpc-'));
});
after(() => rm(dir, { recursive: true, force: true }));

test('the server adds its next thumbprint over the pinned link, the file keeps it, and only a thumbprint other than the link\'s can be dropped', async () => {
  const server = new CommsServer({ identity: serverId, trust: (tp) => tp === tentacleId.thumbprint });
  const port = await server.listen(0, '127.0.0.1');
  const config = defaultConfig('trusting', join(dir, 'home'));
  config.trust = [serverId.thumbprint];
  config.servers = [{ thumbprint: serverId.thumbprint, address: `tcp://127.0.0.1:${port}` }];
  const configPath = join(dir, 'tentacle.json');
  await writeConfigFile(configPath, config);
  const agent = await startAgent({ config, identity: tentacleId, configPath, configPollMs: 50 });
  try {
    const client = await server.connectionFor({ thumbprint: tentacleId.thumbprint });
    const endpoint = connectionEndpoint(client);

    const added = await callTentacle(endpoint, 'trust.add', { thumbprint: nextId.thumbprint.toLowerCase() });
    assert.deepEqual(added.trusted, [serverId.thumbprint, nextId.thumbprint]);
    assert.deepEqual((await readConfigFile(configPath)).trust, [serverId.thumbprint, nextId.thumbprint], 'written to the config file');
    assert.deepEqual((await callTentacle(endpoint, 'trust.add', { thumbprint: nextId.thumbprint })).trusted, added.trusted, 'adding again changes nothing');

    await assert.rejects(callTentacle(endpoint, 'trust.drop', { thumbprint: serverId.thumbprint }), (err) => {
      assert.ok(isReefError(err, 'REEF_TRUST_CHANGE_REFUSED'), String(err));
      assert.match((err as Error).message, /this very connection/);
      return true;
    });
    await assert.rejects(callTentacle(endpoint, 'trust.add', { thumbprint: 'not a thumbprint' }), (err) => isReefError(err, 'REEF_INVALID_ARGUMENT'));

    const dropped = await callTentacle(endpoint, 'trust.drop', { thumbprint: nextId.thumbprint });
    assert.deepEqual(dropped.trusted, [serverId.thumbprint]);
    assert.deepEqual((await readConfigFile(configPath)).trust, [serverId.thumbprint]);
    // The link stays: the thumbprint it was made with is still trusted.
    assert.equal(server.links.connections(tentacleId.thumbprint).length, 1);
  } finally {
    await agent.close();
    await server.close();
  }
});

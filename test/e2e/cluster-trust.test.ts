/**
 * Trust and session resumption across two server nodes (in this process) on one real
 * PostgreSQL database: a machine deleted through one node is no longer trusted by the
 * other, which holds its thumbprints in memory (its live link there is closed and a
 * reconnect refused); and a session one node issued resumes on the other, both keeping the
 * cluster's session-ticket keys in the store.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TentacleComms } from '../../src/comms/index.js';
import { dialSecure } from '../../src/comms/dialer.js';
import { silentLogger } from '../../src/logging.js';
import { generateCertificate, type CertificateIdentity } from '../../src/pki/certificate.js';
import { startReefServer, type RunningServer } from '../../src/server/runtime.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { waitFor } from './harness.js';

describe('trust and resumption on two nodes of one PostgreSQL database', () => {
  let database: TestDatabase;
  let root: string;
  let a: RunningServer;
  let b: RunningServer;
  let tentacle: CertificateIdentity;

  before(async () => {
    database = await createTestDatabase();
    root = await mkdtemp(join(tmpdir(), 'resume-cluster-'));
    const start = (name: string) =>
      startReefServer({ dataDir: join(root, name), store: database.url, nodeName: name, httpsPort: 0, commsPort: 0, host: '127.0.0.1', logger: silentLogger });
    a = await start('node-a');
    b = await start('node-b');
    tentacle = await generateCertificate('Tentacle');
  });

  after(async () => {
    await b?.close();
    await a?.close();
    await database?.drop();
    await rm(root, { recursive: true, force: true });
  });

  test('a session node A issued resumes on node B', async () => {
    await a.store.createMachine({ name: 'roamer', kind: 'target', thumbprint: tentacle.thumbprint, commsStyle: 'polling', environments: ['Cluster'], roles: ['web'] });
    assert.equal(a.info.commsThumbprint, b.info.commsThumbprint, 'one cluster certificate');
    const sessions: Buffer[] = [];
    const dial = (port: number, session?: Buffer) =>
      dialSecure({
        identity: tentacle,
        host: '127.0.0.1',
        port,
        expected: [a.info.commsThumbprint],
        explainMismatch: () => 'unexpected server certificate',
        carrier: 'tcp',
        handshakeTimeoutMs: 10_000,
        resume: session ? { session, thumbprint: a.info.commsThumbprint } : undefined,
        onResumableSession: (s) => sessions.push(s),
      });
    const atA = await dial(a.commsPort);
    assert.equal(atA.resumed, false);
    await waitFor('the session ticket', async () => sessions.length > 0);
    atA.socket.destroy();
    const atB = await dial(b.commsPort, sessions[0]);
    assert.equal(atB.resumed, true);
    atB.socket.destroy();
  });

  test('a machine deleted through node A is no longer trusted by node B: its link there closes and it is refused', async () => {
    const name = 'deleted-elsewhere';
    const identity = await generateCertificate('Tentacle 2');
    await a.store.createMachine({ name, kind: 'target', thumbprint: identity.thumbprint, commsStyle: 'polling', environments: ['Cluster'], roles: ['web'] });
    const comms = new TentacleComms({ identity, services: new Map() });
    const poller = comms.poll({ host: '127.0.0.1', port: b.commsPort, carrier: 'tcp', trusted: () => [b.info.commsThumbprint] });
    try {
      await once(poller, 'connected');
      // Node B now holds the thumbprint in memory; deleting through A must reach it.
      const disconnected = once(poller, 'disconnected');
      assert.equal(await a.store.deleteMachine(name), true);
      // Without the bus, B would hold the link (and its memory would trust a reconnect) until its next full re-read.
      await withTimeout(disconnected, 10_000, 'node B to close the deleted machine’s link');
      const [err] = (await withTimeout(once(poller, 'failed'), 10_000, 'the reconnect to be refused')) as [Error & { code: string }];
      assert.equal(err.code, 'REEF_UNTRUSTED_CERTIFICATE');
      assert.equal(b.comms.links.pick(identity.thumbprint), undefined);
    } finally {
      await comms.close();
    }
  });
});

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)))]).finally(() => clearTimeout(timer));
}

/**
 * Sign-in under a burst, over real HTTPS: the limit counts attempts before their password
 * is hashed, the hashing is bounded, and an authenticated upload is not starved by it.
 * Hash evaluations are counted by the scrypt pool the real code path uses.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerInfo } from '../../src/api/contract.js';
import { CommsServer } from '../../src/comms/server.js';
import { silentLogger } from '../../src/logging.js';
import { generateCertificate } from '../../src/pki/certificate.js';
import { createApiKey } from '../../src/server/auth/apikeys.js';
import { sharedScryptPool } from '../../src/server/auth/scrypt-pool.js';
import { createUser } from '../../src/server/auth/users.js';
import { createBlobStore, type BlobStore } from '../../src/server/files/blobs.js';
import { createApiHandler } from '../../src/server/http/index.js';
import { createPortalHandler } from '../../src/server/portal/index.js';
import { createSqliteStore } from '../../src/server/store/index.js';
import type { Store } from '../../src/server/store/types.js';
import { startTaskEngine } from '../server/http/harness.js';

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

interface PortalServer {
  port: number;
  apiKey: string;
  blobs: BlobStore;
  close(): Promise<void>;
}

const agent = new https.Agent({ rejectUnauthorized: false, keepAlive: false });

async function startPortal(dir: string, signInFailuresPerMinute?: number): Promise<PortalServer> {
  await mkdir(dir, { recursive: true });
  const store: Store = await createSqliteStore(join(dir, 'reef.db'));
  const identity = await generateCertificate('reef-sign-in-limits');
  const comms = new CommsServer({ identity, trust: () => false });
  const info: ServerInfo = { product: 'Reef', version: '0.0.0-test', nodeName: 'n', commsThumbprint: identity.thumbprint, commsPort: 10943 };
  const blobs = createBlobStore(join(dir, 'files'));
  const engine = await startTaskEngine(store, comms, blobs);
  const portal = createPortalHandler({ store, comms, info, logger: silentLogger, nodes: () => engine.nodes(), links: () => engine.links(), options: { signInFailuresPerMinute } });
  const server = https.createServer({ cert: identity.certPem, key: identity.keyPem }, createApiHandler({ store, engine, comms, blobs, info, logger: silentLogger, portal }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await createUser(store, 'operator', 'the right password');
  return {
    port: (server.address() as AddressInfo).port,
    apiKey: (await createApiKey(store, 'admin')).key,
    blobs,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await engine.close();
      await comms.close();
      await store.close();
    },
  };
}

function request(port: number, method: string, path: string, options: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, method, path, headers: options.headers ?? {}, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** `count` parallel wrong sign-ins, all with one valid double-submit token. */
async function wrongSignIns(port: number, count: number): Promise<Res[]> {
  const form = await request(port, 'GET', '/login');
  const token = /name="csrf" value="([^"]+)"/.exec(form.text)![1]!;
  const body = new URLSearchParams({ csrf: token, username: 'operator', password: 'a wrong password', next: '/' }).toString();
  const headers = { 'content-type': 'application/x-www-form-urlencoded', cookie: `reef_login=${token}` };
  return Promise.all(Array.from({ length: count }, () => request(port, 'POST', '/login', { headers, body })));
}

describe('sign-in under a burst', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'reef-sign-in-limits-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('300 parallel wrong sign-ins are evaluated no more than the limit (10); the rest get 429 with Retry-After', async () => {
    const server = await startPortal(join(dir, 'limited'));
    try {
      const before = sharedScryptPool().stats().evaluated;
      const answers = await wrongSignIns(server.port, 300);
      const evaluated = sharedScryptPool().stats().evaluated - before;
      assert.ok(evaluated <= 10, `${evaluated} passwords hashed`);
      assert.equal(answers.filter((a) => a.status === 401).length, evaluated, 'each evaluated attempt answered 401');
      const limited = answers.filter((a) => a.status === 429);
      assert.equal(limited.length, 300 - evaluated);
      assert.ok(limited.every((a) => Number(a.headers['retry-after']) >= 1), 'every 429 carries Retry-After');
      // Refused by the count, not merely by the bounded hashing queue behind it.
      assert.ok(limited.every((a) => /Too many failed sign-ins from this address/.test(a.text)));
    } finally {
      await server.close();
    }
  });

  test('an authenticated upload completes during a burst of wrong sign-ins that all reach the hashing', async () => {
    // A limit the burst cannot reach: every attempt goes to the password check.
    const server = await startPortal(join(dir, 'unlimited'), 1_000_000);
    try {
      const pool = sharedScryptPool();
      const before = pool.stats().evaluated;
      const burst = wrongSignIns(server.port, 300);
      while (pool.stats().running === 0) await new Promise((r) => setTimeout(r, 5));
      const data = Buffer.alloc(1024 * 1024, 7);
      const upload = await request(server.port, 'POST', '/api/files', { headers: { 'content-type': 'application/octet-stream', 'x-reef-apikey': server.apiKey }, body: data });
      assert.equal(upload.status, 201, upload.text);
      const sha256 = createHash('sha256').update(data).digest('hex');
      assert.deepEqual(await server.blobs.stat(sha256), { size: data.length });

      const answers = await burst;
      assert.ok(pool.stats().evaluated - before > 0, 'the burst did hash passwords');
      assert.ok(answers.every((a) => a.status === 401 || a.status === 429), 'only 401 and 429');
      const busy = answers.filter((a) => a.status === 429);
      assert.ok(busy.length > 0, 'hashing is bounded: attempts beyond the queue are refused');
      assert.ok(busy.every((a) => Number(a.headers['retry-after']) >= 1 && /checking too many sign-ins/.test(a.text)));
    } finally {
      await server.close();
    }
  });
});

/**
 * A real HTTPS API server on 127.0.0.1:0 for the HTTP layer's tests: SQLite store in a
 * temp dir, a real CommsServer (no tentacles connect), a blob store, and the real task
 * engine, so target resolution, its messages and cancellation are the product's own.
 *
 * No tentacle ever connects here, so the engine claims each task, marks it Running and
 * waits for the tentacle to poll; tests that drive a task's log and state write them
 * to the store and announce them on `engine.events`, as the engine does.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ApiClient } from '../../../src/api/client.js';
import type { ServerInfo } from '../../../src/api/contract.js';
import { CommsServer } from '../../../src/comms/index.js';
import { silentLogger } from '../../../src/logging.js';
import { generateCertificate, type CertificateIdentity } from '../../../src/pki/certificate.js';
import { createApiKey } from '../../../src/server/auth/apikeys.js';
import { LocalBus } from '../../../src/server/cluster/bus.js';
import { createBlobStore, type BlobStore } from '../../../src/server/files/blobs.js';
import { createApiHandler, type ApiLimits } from '../../../src/server/http/index.js';
import type { InstallFacts } from '../../../src/server/http/context.js';
import { createStore, type Store } from '../../../src/server/store/index.js';
import { TaskEngine } from '../../../src/server/tasks/engine.js';
import { removeTempDir, trackedTempDir } from '../../support/processes.js';

/** The node name the harness's engine joins its store as. */
const TEST_NODE = 'test-node';

/**
 * The real task engine over `store`, started as the server starts it (one node, no bus).
 * Close it before the comms server and the store.
 */
export async function startTaskEngine(store: Store, comms: CommsServer, blobs: BlobStore): Promise<TaskEngine> {
  const engine = new TaskEngine({ store, comms, blobs, logger: silentLogger, bus: new LocalBus(), node: { name: TEST_NODE, info: {} } });
  await engine.start();
  return engine;
}

export interface Harness {
  url: string;
  port: number;
  identity: CertificateIdentity;
  store: Store;
  engine: TaskEngine;
  comms: CommsServer;
  blobs: BlobStore;
  info: ServerInfo;
  adminKey: string;
  /** A pinned client with the admin key. */
  client: ApiClient;
  /** A pinned client with another (or no) key. */
  clientWith(apiKey?: string): ApiClient;
  raw(method: string, path: string, options?: RawOptions): Promise<RawResponse>;
  close(): Promise<void>;
}

export interface RawOptions {
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Adds the admin key unless false. Default true. */
  auth?: boolean;
  /** Connect from this local address (127.0.0.2...: another client on loopback). */
  localAddress?: string;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/**
 * One request to an HTTPS server on 127.0.0.1 (any certificate: these tests check answers,
 * not trust), its answer read whole and parsed as JSON when it is JSON. The admin key is
 * added unless `auth: false` or the request carries a key of its own. Bounded: 20 s.
 */
export function rawRequest(port: number, adminKey: string, method: string, path: string, options: RawOptions = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.auth !== false && !('x-reef-apikey' in headers) && !('authorization' in headers)) headers['x-reef-apikey'] = adminKey;
    const req = https.request({ host: '127.0.0.1', port, localAddress: options.localAddress, method, path, headers, rejectUnauthorized: false, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`no answer to ${method} ${path} within 20 s`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

let shared: CertificateIdentity | undefined;

/** `install`: what install commands are made of (the server passes its certificate's pin and thumbprint). */
export async function startHarness(limits: ApiLimits = {}, install?: InstallFacts): Promise<Harness> {
  const dir = await trackedTempDir('reef-http-');
  const store = await createStore(join(dir, 'reef.db'));
  const identity = (shared ??= await generateCertificate('reef-test-api'));
  const comms = new CommsServer({ identity, trust: () => false });
  const blobs = createBlobStore(join(dir, 'files'));
  const engine = await startTaskEngine(store, comms, blobs);
  const info: ServerInfo = { product: 'Reef', version: '0.0.0-test', nodeName: TEST_NODE, commsThumbprint: identity.thumbprint, commsPort: 10943 };
  const handler = createApiHandler({ store, engine, comms, blobs, info, logger: silentLogger, limits, ...(install ? { install } : {}) });
  const server = https.createServer({ cert: identity.certPem, key: identity.keyPem }, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `https://127.0.0.1:${port}`;
  const adminKey = (await createApiKey(store, 'admin')).key;
  const clientWith = (apiKey?: string) => new ApiClient({ server: url, apiKey, serverThumbprint: identity.thumbprint, timeoutMs: 10_000 });
  const raw = (method: string, path: string, options: RawOptions = {}): Promise<RawResponse> => rawRequest(port, adminKey, method, path, options);

  return {
    url,
    port,
    identity,
    store,
    engine,
    comms,
    blobs,
    info,
    adminKey,
    client: clientWith(adminKey),
    clientWith,
    raw,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await engine.close();
      await comms.close();
      await store.close();
      await removeTempDir(dir);
    },
  };
}

let counter = 0;
/** A distinct valid thumbprint per call. */
export function thumbprint(): string {
  return (++counter + 0xabc000).toString(16).toUpperCase().padStart(64, '0');
}

/** Waits until `check` is true, polling; fails after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A real HTTPS API server on 127.0.0.1:0 for the HTTP layer's tests: SQLite store in a
 * temp dir, a real CommsServer (no tentacles), a blob store, and a small engine that
 * stores tasks and lets the test drive its events.
 */
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../../../src/api/client.js';
import type { CreateTaskRequest, NodeView, ServerInfo } from '../../../src/api/contract.js';
import { CommsServer } from '../../../src/comms/server.js';
import { ReefError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/logging.js';
import { generateCertificate, type CertificateIdentity } from '../../../src/pki/certificate.js';
import { createApiKey } from '../../../src/server/auth/apikeys.js';
import { createBlobStore, type BlobStore } from '../../../src/server/files/blobs.js';
import { createApiHandler, type ApiLimits } from '../../../src/server/http/index.js';
import { createSqliteStore } from '../../../src/server/store/index.js';
import type { Machine, Store, TaskWithMachines } from '../../../src/server/store/types.js';
import type { TaskEngineApi, TaskEvents, TentacleLinks } from '../../../src/server/tasks/api.js';
import { groupBy } from '../../../src/server/store/rows.js';
import { nodeView } from '../../../src/server/tasks/engine.js';

export class TestEngine implements TaskEngineApi {
  readonly events = new EventEmitter<TaskEvents>();
  constructor(private readonly store: Store) {}

  async createTask(request: CreateTaskRequest): Promise<TaskWithMachines> {
    const { store } = this;
    const target = request.target;
    let machines: Machine[];
    if ('environment' in target) {
      if (!(await store.getEnvironment(target.environment))) throw new ReefError('REEF_NOT_FOUND', `No environment is named "${target.environment}".`);
      machines = await store.listMachines({ environment: target.environment, role: target.role });
    } else if ('workerPool' in target) {
      if (!(await store.getWorkerPool(target.workerPool))) throw new ReefError('REEF_NOT_FOUND', `No worker pool is named "${target.workerPool}".`);
      machines = await store.listMachines({ workerPool: target.workerPool });
    } else {
      machines = await store.listMachines({ names: target.machines });
      const known = new Set(machines.map((m) => m.name.toLowerCase()));
      const missing = target.machines.filter((n) => !known.has(n.toLowerCase()));
      if (missing.length) throw new ReefError('REEF_NOT_FOUND', `No machine is named ${missing.join(', ')}.`);
    }
    if (machines.length === 0) throw new ReefError('REEF_NO_MACHINES', 'The target matches no machines.');
    const spec =
      request.kind === 'run-script' ? { script: request.script } : request.kind === 'push-file' ? { file: request.file } : {};
    return store.createTask({ kind: request.kind, spec, target, machineIds: machines.map((m) => m.id) });
  }

  async cancelTask(taskId: string): Promise<TaskWithMachines | null> {
    if (!(await this.store.getTask(taskId))) return null;
    await this.store.requestCancel(taskId);
    return this.store.getTask(taskId);
  }

  async links(): Promise<TentacleLinks> {
    return groupBy(await this.store.coordination.listLinks(15_000), (l) => l.thumbprint);
  }

  /** No scheduler here: the nodes the store knows, none of them this one. */
  async nodes(): Promise<NodeView[]> {
    return (await this.store.coordination.listNodes(15_000)).map((record) => nodeView(record, ''));
  }
}

export interface Harness {
  url: string;
  port: number;
  identity: CertificateIdentity;
  store: Store;
  engine: TestEngine;
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
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

let shared: CertificateIdentity | undefined;

export async function startHarness(limits: ApiLimits = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'reef-http-'));
  const store = await createSqliteStore(join(dir, 'reef.db'));
  const identity = (shared ??= await generateCertificate('reef-test-api'));
  const comms = new CommsServer({ identity, trust: () => false });
  const blobs = createBlobStore(join(dir, 'files'));
  const engine = new TestEngine(store);
  const info: ServerInfo = { product: 'Reef', version: '0.0.0-test', nodeName: 'test-node', commsThumbprint: identity.thumbprint, commsPort: 10943 };
  const handler = createApiHandler({ store, engine, comms, blobs, info, logger: silentLogger, limits });
  const server = https.createServer({ cert: identity.certPem, key: identity.keyPem }, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `https://127.0.0.1:${port}`;
  const adminKey = (await createApiKey(store, 'admin')).key;
  const clientWith = (apiKey?: string) => new ApiClient({ server: url, apiKey, serverThumbprint: identity.thumbprint, timeoutMs: 10_000 });
  const agent = new https.Agent({ rejectUnauthorized: false, keepAlive: false });

  const raw = (method: string, path: string, options: RawOptions = {}): Promise<RawResponse> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...options.headers };
      if (options.auth !== false && !('x-reef-apikey' in headers) && !('authorization' in headers)) headers['x-reef-apikey'] = adminKey;
      const req = https.request({ host: '127.0.0.1', port, method, path, headers, agent }, (res) => {
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
      req.on('error', reject);
      req.end(options.body);
    });

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
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await comms.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
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

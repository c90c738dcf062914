/**
 * A real Reef server (startReefServer: SQLite store, or PostgreSQL for a node of a
 * cluster; comms port, 443-style front door, WebSocket endpoint, task engine, REST API) on
 * loopback with a temp data directory, and the API client a user would point at it. Machines are registered straight into its
 * store: registration is not what the benchmarks measure, and 1,000 HTTPS round trips
 * would only spend the time budget.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient, readEvents } from '../../src/api/client.js';
import type { CreateTaskRequest, TaskView } from '../../src/api/contract.js';
import type { CommsLimits } from '../../src/comms/index.js';
import { createApiKey } from '../../src/server/auth/apikeys.js';
import { startReefServer, type RunningServer } from '../../src/server/runtime.js';

/** The SNI name that means "a Tentacle" on the front door (resolved to 127.0.0.1 by each tentacle's config). */
export const POLLING_HOSTNAME = 'polling.reef.bench';
export const BENCH_ENVIRONMENT = 'Bench';
export const BENCH_ROLE = 'bench';

export interface BenchServerOptions {
  /** Reused across a restart, so the restarted server finds its certificate and machines. */
  dataDir?: string;
  /** 0 picks a free port; a restart passes the ports the first start got. */
  commsPort?: number;
  httpsPort?: number;
  limits?: Partial<CommsLimits>;
  /** Where it listens; 127.0.0.1 unless a benchmark puts it in a network namespace. */
  host?: string;
  /** A node of a cluster: its PostgreSQL store, its node name and the files directory the nodes share. */
  store?: string;
  nodeName?: string;
  filesDir?: string;
}

export interface BenchServer {
  server: RunningServer;
  dataDir: string;
  thumbprint: string;
  api: ApiClient;
  /** The key `api` uses, for a client in another process. */
  apiKey: string;
  /** Stops the server; the data directory is kept (see removeData). */
  close(): Promise<void>;
  removeData(): Promise<void>;
}

export interface MachineToRegister {
  name: string;
  thumbprint: string;
}

export async function startBenchServer(options: BenchServerOptions = {}): Promise<BenchServer> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'reef-bench-server-')));
  const server = await startReefServer({
    dataDir,
    httpsPort: options.httpsPort ?? 0,
    commsPort: options.commsPort ?? 0,
    host: options.host ?? '127.0.0.1',
    pollingHostnames: [POLLING_HOSTNAME],
    limits: options.limits,
    store: options.store,
    nodeName: options.nodeName,
    filesDir: options.filesDir,
  });
  const thumbprint = server.info.commsThumbprint;
  // The first start prints the admin key once; a restart makes a key of its own.
  const apiKey = server.initialAdminKey ?? (await createApiKey(server.store, 'bench')).key;
  const api = new ApiClient({ server: `https://${options.host ?? '127.0.0.1'}:${server.httpsPort}`, apiKey, serverThumbprint: thumbprint });
  return {
    server,
    dataDir,
    thumbprint,
    api,
    apiKey,
    close: () => server.close(),
    removeData: () => rm(dataDir, { recursive: true, force: true }),
  };
}

/** Registers polling deployment targets in environment Bench, role bench. */
export async function registerMachines(server: RunningServer, machines: readonly MachineToRegister[]): Promise<void> {
  for (const machine of machines) {
    await server.store.createMachine({
      name: machine.name,
      kind: 'target',
      thumbprint: machine.thumbprint,
      commsStyle: 'polling',
      environments: [BENCH_ENVIRONMENT],
      roles: [BENCH_ROLE],
    });
  }
}

/**
 * Creates a task through the REST API and follows its event stream (as `reef tasks
 * --follow` does) until the server says it ended; resolves with the final task.
 */
export async function runTask(api: ApiClient, request: CreateTaskRequest): Promise<TaskView> {
  let task = await api.json<TaskView>('POST', '/api/tasks', { body: request });
  const stream = await api.request('GET', `/api/tasks/${task.id}/log/stream`, { headers: { accept: 'text/event-stream' }, timeoutMs: 0 });
  for await (const event of readEvents(stream)) {
    if (event.event === 'state') task = JSON.parse(event.data) as TaskView;
    if (event.event === 'end') break;
  }
  stream.destroy();
  return task;
}

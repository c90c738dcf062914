/**
 * The REST API's contract: request bodies as zod schemas (the server validates with
 * them), responses as types (the CLI and the tentacle's registration read them).
 * Shared by server, CLI and tentacle, so it imports nothing from any of them.
 * docs/api.md describes the routes.
 */
import { z } from 'zod';
import { SCRIPT_SYNTAXES } from './tentacle/vocabulary.js';

export const API_KEY_HEADER = 'x-reef-apikey';

/** Names of machines, environments, roles, pools: printable, no control characters. */
const name = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters')
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters');

const thumbprint = z.string().trim().min(1, 'is required');

export const RegisterMachineRequest = z
  .object({
    name,
    kind: z.enum(['target', 'worker']),
    thumbprint,
    commsStyle: z.enum(['polling', 'listening']),
    endpoint: z.object({ host: z.string().trim().min(1).max(255), port: z.number().int().min(1).max(65535) }).nullish(),
    environments: z.array(name).max(100).optional(),
    roles: z.array(name).max(100).optional(),
    workerPools: z.array(name).max(100).optional(),
    tentacleVersion: z.string().max(100).nullish(),
    /** Replace an existing registration with the same name or thumbprint. */
    force: z.boolean().optional(),
  })
  .strict();
export type RegisterMachineRequest = z.infer<typeof RegisterMachineRequest>;

export const NameRequest = z.object({ name }).strict();

export const TaskTarget = z.union([
  z.object({ environment: name, role: name.optional() }).strict(),
  z.object({ workerPool: name }).strict(),
  z.object({ machines: z.array(name).min(1, 'must name at least one machine').max(10_000) }).strict(),
]);
export type TaskTarget = z.infer<typeof TaskTarget>;

const ScriptSyntax = z.enum(SCRIPT_SYNTAXES);

export const CreateTaskRequest = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('run-script'),
      target: TaskTarget,
      script: z.object({ syntax: ScriptSyntax.default('bash'), body: z.string().min(1, 'must not be empty').max(4 * 1024 * 1024) }).strict(),
      timeoutSeconds: z.number().int().positive().max(7 * 24 * 3600).optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('push-file'),
      target: TaskTarget,
      file: z
        .object({
          /** An uploaded file's SHA-256 (POST /api/files). */
          sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the lowercase hex SHA-256 of an uploaded file'),
          /** Absolute path on the tentacle. */
          destination: z.string().min(1).max(4096).refine((p) => p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p), 'must be an absolute path'),
        })
        .strict(),
    })
    .strict(),
  z.object({ kind: z.literal('health-check'), target: TaskTarget }).strict(),
]);
export type CreateTaskRequest = z.infer<typeof CreateTaskRequest>;

// ---- responses ----

export interface ApiError {
  error: { code: string; message: string; details?: unknown };
}

export interface ServerInfo {
  product: 'Reef';
  version: string;
  nodeName: string;
  /** Thumbprint of the certificate tentacles must trust for comms. */
  commsThumbprint: string;
  commsPort: number;
}

/** One server node sharing the store (GET /api/nodes). */
export interface NodeView {
  name: string;
  /** The node answering this request. */
  thisNode: boolean;
  /** Heartbeat fresh and not stopped. */
  alive: boolean;
  /** Stopped cleanly; otherwise a node that is not alive stopped beating (crashed, cut off). */
  stopped: boolean;
  startedAt: string;
  heartbeatAt: string;
  version: string | null;
  host: string | null;
  httpsPort: number | null;
  commsPort: number | null;
  connectedTentacles: number;
  /** Machines' parts of unfinished tasks it supervises. */
  runningWork: number;
}

export interface ConnectionView {
  carrier: string;
  remoteAddress: string;
  connectedAt: string;
}

export interface MachineView {
  id: string;
  name: string;
  kind: 'target' | 'worker';
  thumbprint: string;
  commsStyle: 'polling' | 'listening';
  endpoint: { host: string; port: number } | null;
  environments: string[];
  roles: string[];
  workerPools: string[];
  carrier: string | null;
  tentacleVersion: string | null;
  lastSeenAt: string | null;
  lastHealth: 'healthy' | 'unhealthy' | 'unknown';
  lastHealthAt: string | null;
  createdAt: string;
  /** Live connections to the server node answering. */
  connections: ConnectionView[];
  /** Every server node its tentacle is connected to now (a cluster has several), and since when. */
  nodes: { name: string; carrier: string; connectedAt: string }[];
  /** Connected to some node. */
  online: boolean;
  /**
   * While online: since when, the oldest of its live connections. `lastSeenAt` is when a
   * connection last began or ended, so it says nothing new about a machine still connected.
   */
  connectedSince: string | null;
}

export interface RegisterMachineResponse {
  machine: MachineView;
  created: boolean;
  server: ServerInfo;
}

export type TaskState = 'Queued' | 'Running' | 'Success' | 'Failed' | 'Cancelled' | 'TimedOut';
export type TaskMachineState = 'Pending' | 'Running' | 'Success' | 'Failed' | 'Cancelled' | 'TimedOut';

export interface TaskMachineView {
  machineId: string;
  machineName: string;
  state: TaskMachineState;
  exitCode: number | null;
  error: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface TaskView {
  id: string;
  kind: 'run-script' | 'push-file' | 'health-check';
  state: TaskState;
  target: Record<string, unknown>;
  spec: Record<string, unknown>;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  cancelRequestedAt: string | null;
  error: string | null;
  /** How many machines the task runs on. */
  machineCount: number;
  /** Each machine's part; empty in lists (GET /api/tasks), which count them in machineCount. */
  machines: TaskMachineView[];
}

export interface LogLineView {
  seq: number;
  machineId: string | null;
  at: string;
  stream: 'stdout' | 'stderr' | 'info' | 'error';
  text: string;
}

export interface LogPage {
  items: LogLineView[];
  /** Pass as `after` to read on. */
  lastSeq: number;
  taskState: TaskState;
}

export interface UploadedFile {
  sha256: string;
  size: number;
}

/** `details` of the 409 REEF_IN_USE that DELETE /api/files/:sha256 answers while tasks still need the file. */
export interface FileInUse {
  /** Queued or running push-file tasks that will still send it. */
  taskIds: string[];
}

export interface CreatedApiKey {
  id: string;
  name: string;
  /** Shown once; only its hash is stored. */
  key: string;
}

export const FINAL_TASK_STATES: readonly TaskState[] = ['Success', 'Failed', 'Cancelled', 'TimedOut'];

/**
 * The REST API's contract, as zod schemas: request bodies, query strings, path parameters
 * and headers (the server validates with them), and responses (their types are what the
 * CLI and the tentacle's registration read). The server's route table pairs each route
 * with these schemas, and its OpenAPI document (GET /api/openapi.json) is generated from
 * that table, so the document, the validation and the types are one source.
 * Shared by server, CLI and tentacle, so it imports nothing from any of them.
 * docs/api.md describes the routes.
 *
 * `named('Name', schema)` names a schema in the document's components and zod's own
 * `.describe()` gives a field its description there; neither changes how zod parses. This
 * module does not load the OpenAPI generator (the CLI and the Tentacle read it too).
 */
import { DEFAULT_FLEET_MAX_PARALLEL } from './fleet.js';
import { z } from 'zod';
import { INSTALL_CARRIERS } from './install.js';
import { SHA256_HEADER } from './headers.js';
import { ROLES } from './roles.js';
import { SCRIPT_SYNTAXES } from './tentacle/vocabulary.js';

export { API_KEY_HEADER, SHA256_HEADER } from './headers.js';

/**
 * Names `schema` in the OpenAPI document (components/schemas/<refId>, referenced wherever it
 * is used): the metadata @asteasolutions/zod-to-openapi reads (its `ZodOpenApiFullMetadata`),
 * set on this fresh instance without patching zod as its `.openapi()` would.
 */
function named<T extends z.ZodTypeAny>(refId: string, schema: T): T {
  (schema._def as { openapi?: unknown }).openapi = { _internal: { refId } };
  return schema;
}

/** Names of machines, environments, roles, pools: printable, no control characters. */
const name = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters')
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters');

const thumbprint = z.string().trim().min(1, 'is required');

export const MACHINE_KINDS = ['target', 'worker'] as const;
export const MachineKind = z.enum(MACHINE_KINDS);
export const CommsStyle = z.enum(['polling', 'listening']);

export const RegisterMachineRequest = named(
  'RegisterMachineRequest',
  z.object({
    name,
    kind: MachineKind,
    thumbprint,
    commsStyle: CommsStyle,
    endpoint: z.object({ host: z.string().trim().min(1).max(255), port: z.number().int().min(1).max(65535) }).nullish(),
    environments: z.array(name).max(100).optional(),
    roles: z.array(name).max(100).optional(),
    workerPools: z.array(name).max(100).optional(),
    tentacleVersion: z.string().max(100).nullish(),
    force: z.boolean().optional().describe('Replace an existing registration with the same name or thumbprint (200 instead of 409).'),
  }).strict(),
);
export type RegisterMachineRequest = z.infer<typeof RegisterMachineRequest>;

export const NameRequest = named('NameRequest', z.object({ name }).strict());

export const TaskTarget = named('TaskTarget', z.union([
  z.object({ environment: name, role: name.optional() }).strict(),
  z.object({ workerPool: name }).strict(),
  z.object({ machines: z.array(name).min(1, 'must name at least one machine').max(10_000) }).strict(),
]).describe('Which machines: an environment (and role), a worker pool, or machines by name or id.'));
export type TaskTarget = z.infer<typeof TaskTarget>;

/**
 * Which machines a fleet operation (a Tentacle certificate rotation) reaches: as TaskTarget,
 * except that a worker pool means every worker in it, and `all` every machine.
 */
export const FleetTarget = named('FleetTarget', z.union([
  TaskTarget,
  z.object({ all: z.literal(true) }).strict(),
]).describe('An environment (and role), a worker pool (every worker in it), machines by name or id, or every machine ({"all": true}).'));
export type FleetTarget = z.infer<typeof FleetTarget>;

/** How many machines of a fleet operation (certificate rotation, upgrade) work at once. */
const FleetMaxParallel = z
  .number()
  .int()
  .positive()
  .max(1000)
  .optional()
  .describe(`How many machines work at once (on each server node); default ${DEFAULT_FLEET_MAX_PARALLEL}.`);

const ScriptSyntax = z.enum(SCRIPT_SYNTAXES);

export const CreateTaskRequest = named('CreateTaskRequest', z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('run-script'),
      target: TaskTarget,
      script: z.object({ syntax: ScriptSyntax.default('bash'), body: z.string().min(1, 'must not be empty').max(4 * 1024 * 1024) }).strict(),
      timeoutSeconds: z.number().int().positive().max(7 * 24 * 3600).optional(),
      lostContactLimitSeconds: z
        .number()
        .int()
        .positive()
        .max(7 * 24 * 3600)
        .optional()
        .describe("How long the script's Tentacle may be out of contact before its machine run fails; default the server's lost-contact limit (30 minutes)."),
    })
    .strict(),
  z
    .object({
      kind: z.literal('push-file'),
      target: TaskTarget,
      file: z
        .object({
          sha256: z
            .string()
            .regex(/^[0-9a-f]{64}$/, 'must be the lowercase hex SHA-256 of an uploaded file')
            .describe("An uploaded file's SHA-256 (POST /api/files)."),
          destination: z
            .string()
            .min(1)
            .max(4096)
            .refine((p) => p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p), 'must be an absolute path')
            .describe('An absolute path on the Tentacle, under a folder it allows file transfers in.'),
        })
        .strict(),
    })
    .strict(),
  z.object({ kind: z.literal('health-check'), target: TaskTarget }).strict(),
  z
    .object({
      kind: z.literal('rotate-machine-certificate'),
      target: FleetTarget,
      maxParallel: FleetMaxParallel,
    })
    .strict()
    .describe('Tentacle certificate rotation (docs/operations.md): needs the machines:certificate permission.'),
  z
    .object({
      kind: z.literal('upgrade-tentacle'),
      target: FleetTarget,
      version: z
        .string()
        .trim()
        .min(1)
        .max(100)
        .optional()
        .describe("The Tentacle version to install; default the newest the server distributes for each machine's architecture (its downloads folder)."),
      rollbackAfterSeconds: z
        .number()
        .int()
        .min(10)
        .max(24 * 3600)
        .optional()
        .describe('How long the new version has to reach the server before the Tentacle goes back to the previous one by itself. Default 120.'),
      maxParallel: FleetMaxParallel,
    })
    .strict()
    .describe('Tentacle upgrade (docs/operations.md, "Upgrading Tentacles").'),
]));
export type CreateTaskRequest = z.infer<typeof CreateTaskRequest>;

// ---- query strings, path parameters, headers ----

/**
 * A whole number in a query string ("20"): digits only, then the same bounds a JSON number
 * would have. Anything else reaches the number check as a string and is refused.
 */
function queryInt(min: number, max: number) {
  return z.preprocess((v) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v), z.number().int().min(min).max(max));
}

const sha256Hex = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, 'must be a SHA-256 (64 hexadecimal digits)')
  .describe('A SHA-256 in hexadecimal, any case.');

export const TASK_STATES = ['Queued', 'Running', 'Success', 'Failed', 'Cancelled', 'TimedOut'] as const;
export const TaskState = named('TaskState', z.enum(TASK_STATES));
export type TaskState = z.infer<typeof TaskState>;

export const TASK_KINDS = ['run-script', 'push-file', 'health-check', 'rotate-machine-certificate', 'upgrade-tentacle'] as const;

export const IdOrNameParams = z.object({
  idOrName: z.string().min(1).describe('An id or a name (names in any case).'),
});
export const IdParams = z.object({ id: z.string().min(1) });
export const Sha256Params = z.object({ sha256: sha256Hex });
export const ThumbprintParams = z.object({
  thumbprint: z.string().min(1).describe('A SHA-256 certificate thumbprint: 64 hexadecimal digits, colons allowed, any case.'),
});

export const MachineListQuery = z.object({
  kind: MachineKind.optional(),
  environment: z.string().optional().describe('Only machines in this environment (404 when there is none of that name).'),
  role: z.string().optional(),
  workerPool: z.string().optional().describe('Only machines in this worker pool (404 when there is none of that name).'),
  outdated: z.enum(['true', 'false']).optional().describe('`true`: only machines whose Tentacle is older than one the server distributes for their architecture.'),
});
export type MachineListQuery = z.infer<typeof MachineListQuery>;

export const HealthQuery = z.object({
  limit: queryInt(1, 1000).optional().describe('At most this many checks, newest first (default 20).'),
});
export type HealthQuery = z.infer<typeof HealthQuery>;

export const TaskListQuery = z.object({
  state: TaskState.optional(),
  limit: queryInt(1, 1000).optional().describe('At most this many tasks, newest first (default 50).'),
  before: z.string().optional().describe('Only tasks older than this task id: pass the last id seen to read the next page.'),
});
export type TaskListQuery = z.infer<typeof TaskListQuery>;

const afterSeq = queryInt(0, Number.MAX_SAFE_INTEGER).optional().describe('Only lines after this sequence number (default 0).');

export const LogPageQuery = z.object({
  after: afterSeq,
  limit: queryInt(1, 10_000).optional().describe('At most this many lines (default 1000); a page also stops at 1 MiB of text.'),
});
export type LogPageQuery = z.infer<typeof LogPageQuery>;

export const LogStreamQuery = z.object({ after: afterSeq });
export type LogStreamQuery = z.infer<typeof LogStreamQuery>;

export const UploadHeaders = z.object({
  [SHA256_HEADER]: sha256Hex.optional().describe('The SHA-256 the bytes must have; the upload is refused (400 REEF_HASH_MISMATCH) when they do not.'),
});

// ---- responses ----

const timestamp = z.string().datetime({ offset: true });

export const ApiError = named(
  'ApiError',
  z.object({
    error: z.object({
      code: z.string().describe('Stable and machine-readable, e.g. REEF_NOT_FOUND.'),
      message: z.string().describe('For people: says what is wrong and what to do.'),
      details: z
        .unknown()
        .optional()
        .describe('Structured details of some errors: `{problems: [{path, problem}]}` for REEF_INVALID_REQUEST, `{taskIds}` for REEF_IN_USE on a file.'),
    }),
  }),
);
export type ApiError = z.infer<typeof ApiError>;

export const Ping = named('Ping', z.object({ ok: z.literal(true) }));

export const ServerInfo = named(
  'ServerInfo',
  z.object({
    product: z.literal('Reef'),
    version: z.string(),
    nodeName: z.string(),
    commsThumbprint: z.string().describe('Thumbprint of the certificate tentacles must trust for comms.'),
    commsPort: z.number().int(),
  }),
);
export type ServerInfo = z.infer<typeof ServerInfo>;

/** One server node sharing the store (GET /api/nodes). */
export const NodeView = named(
  'NodeView',
  z.object({
    name: z.string(),
    thisNode: z.boolean().describe('The node answering this request.'),
    alive: z.boolean().describe('Heartbeat fresh (15 s) and not stopped.'),
    stopped: z.boolean().describe('Stopped cleanly; a node neither alive nor stopped crashed or lost the database.'),
    startedAt: timestamp,
    heartbeatAt: timestamp,
    version: z.string().nullable(),
    host: z.string().nullable(),
    httpsPort: z.number().int().nullable(),
    commsPort: z.number().int().nullable(),
    connectedTentacles: z.number().int(),
    runningWork: z.number().int().describe("Machines' parts of unfinished tasks it supervises."),
  }),
);
export type NodeView = z.infer<typeof NodeView>;

export const ConnectionView = named(
  'ConnectionView',
  z.object({
    carrier: z.string(),
    remoteAddress: z.string(),
    connectedAt: timestamp,
  }),
);
export type ConnectionView = z.infer<typeof ConnectionView>;

export const MachineView = named(
  'MachineView',
  z.object({
    id: z.string(),
    name: z.string(),
    kind: MachineKind,
    thumbprint: z.string(),
    nextThumbprint: z
      .string()
      .nullable()
      .describe("During a Tentacle certificate rotation: its new certificate's thumbprint, accepted beside `thumbprint` until the Tentacle connects with it."),
    commsStyle: CommsStyle,
    endpoint: z.object({ host: z.string(), port: z.number().int() }).nullable(),
    environments: z.array(z.string()),
    roles: z.array(z.string()),
    workerPools: z.array(z.string()),
    carrier: z.string().nullable(),
    tentacleVersion: z.string().nullable(),
    upgradeAvailable: z
      .string()
      .nullable()
      .optional()
      .describe(
        "The newest Tentacle version the server distributes for the machine's architecture when it is newer than the machine's (reef machines upgrade installs it); else null. Absent from servers older than this field.",
      ),
    lastSeenAt: timestamp.nullable(),
    lastHealth: z.enum(['healthy', 'unhealthy', 'unknown']),
    lastHealthAt: timestamp.nullable(),
    createdAt: timestamp,
    connections: z.array(ConnectionView).describe('Live connections to the server node answering.'),
    nodes: z
      .array(z.object({ name: z.string(), carrier: z.string(), connectedAt: timestamp }))
      .describe('Every server node its tentacle is connected to now (a cluster has several), and since when.'),
    online: z.boolean().describe('Connected to some node.'),
    connectedSince: timestamp
      .nullable()
      .describe(
        'While online: since when, the oldest of its live connections. `lastSeenAt` is when a connection last began or ended, so it says nothing new about a machine still connected.',
      ),
  }),
);
export type MachineView = z.infer<typeof MachineView>;

export const RegisterMachineResponse = named(
  'RegisterMachineResponse',
  z.object({
    machine: MachineView,
    created: z.boolean(),
    server: ServerInfo,
  }),
);
export type RegisterMachineResponse = z.infer<typeof RegisterMachineResponse>;

export const HealthCheckView = named(
  'HealthCheckView',
  z.object({
    id: z.number().int(),
    machineId: z.string(),
    ok: z.boolean(),
    details: z.record(z.unknown()).nullable().describe("What the Tentacle reported, as it reported it."),
    at: timestamp,
  }),
);
export type HealthCheckView = z.infer<typeof HealthCheckView>;

export const GroupView = named(
  'GroupView',
  z.object({
    id: z.string(),
    name: z.string(),
    createdAt: timestamp,
  }).describe('An environment or a worker pool.'),
);
export type GroupView = z.infer<typeof GroupView>;

export const TaskMachineState = z.enum(['Pending', 'Running', 'Success', 'Failed', 'Cancelled', 'TimedOut']);
export type TaskMachineState = z.infer<typeof TaskMachineState>;

export const LateReportView = named(
  'LateReportView',
  z.object({
    receivedAt: timestamp,
    state: TaskMachineState.nullable().describe("The script's real outcome; null when the Tentacle no longer held the ticket."),
    exitCode: z.number().int().nullable(),
    error: z.string().nullable(),
    lines: z.number().int().describe('Late lines stored in the log (after a line saying they arrived late).'),
  }),
);
export type LateReportView = z.infer<typeof LateReportView>;

export const TaskMachineView = named(
  'TaskMachineView',
  z.object({
    machineId: z.string(),
    machineName: z.string(),
    state: TaskMachineState,
    exitCode: z.number().int().nullable(),
    error: z.string().nullable(),
    startedAt: timestamp.nullable(),
    finishedAt: timestamp.nullable(),
    lostContactSince: timestamp
      .nullable()
      .describe('Running: since when the server has not reached the Tentacle (it waits up to the lost-contact limit). Failed for lost contact: when contact was lost.'),
    lateReport: LateReportView.nullable().describe('What the Tentacle reported after this run had failed for lost contact; null if it has not (yet).'),
  }),
);
export type TaskMachineView = z.infer<typeof TaskMachineView>;

export const TaskView = named(
  'TaskView',
  z.object({
    id: z.string(),
    kind: z.enum(TASK_KINDS),
    state: TaskState,
    target: z.record(z.unknown()).describe('The target as the task was created with (a TaskTarget).'),
    spec: z.record(z.unknown()).describe("What the task does, by kind (the script, the file and its destination)."),
    createdAt: timestamp,
    startedAt: timestamp.nullable(),
    finishedAt: timestamp.nullable(),
    cancelRequestedAt: timestamp.nullable(),
    error: z.string().nullable(),
    machineCount: z.number().int().describe('How many machines the task runs on.'),
    machines: z.array(TaskMachineView).describe("Each machine's part; empty in lists (GET /api/tasks), which count them in machineCount."),
  }),
);
export type TaskView = z.infer<typeof TaskView>;

export const LogLineView = named(
  'LogLineView',
  z.object({
    seq: z.number().int(),
    machineId: z.string().nullable(),
    at: timestamp,
    stream: z.enum(['stdout', 'stderr', 'info', 'error']),
    text: z.string(),
  }),
);
export type LogLineView = z.infer<typeof LogLineView>;

export const LogPage = named(
  'LogPage',
  z.object({
    items: z.array(LogLineView),
    lastSeq: z.number().int().describe('Pass as `after` to read on.'),
    /** Read before the lines: when it is final and `items` is empty, the log is complete. */
    taskState: TaskState,
  }),
);
export type LogPage = z.infer<typeof LogPage>;

export const UploadedFile = named(
  'UploadedFile',
  z.object({
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    size: z.number().int(),
  }),
);
export type UploadedFile = z.infer<typeof UploadedFile>;

/** `details` of the 409 REEF_IN_USE that DELETE /api/files/:sha256 answers while tasks still need the file. */
export const FileInUse = named(
  'FileInUse',
  z.object({
    taskIds: z.array(z.string()).describe('Queued or running push-file tasks that will still send it.'),
  }),
);
export type FileInUse = z.infer<typeof FileInUse>;

export const Role = z.enum(ROLES).describe('admin: everything; operator: create and cancel tasks, read machines and logs; viewer: read only; registrar: only register and deregister machines.');

/** The environments and pools a key or user is limited to; both empty: the whole server. */
export const ScopeView = named(
  'Scope',
  z.object({
    environments: z.array(z.string()).describe('Environment names.'),
    workerPools: z.array(z.string()).describe('Worker pool names.'),
  }).describe(
    'Both empty: the whole server. Otherwise the key or user sees and touches only deployment targets all of whose environments are listed ' +
      'and workers all of whose pools are listed.',
  ),
);

/** A new key's or user's role and scope, as requests carry them. */
const accessFields = {
  role: Role,
  environments: z.array(name).max(100).optional().describe('Limit to these environments (they must exist). Not for admin.'),
  workerPools: z.array(name).max(100).optional().describe('Limit to these worker pools (they must exist). Not for admin.'),
};

export const CreateApiKeyRequest = named(
  'CreateApiKeyRequest',
  z.object({ name, ...accessFields, role: Role.default('admin').describe('Default admin (the only role before roles existed).') }).strict(),
);
export type CreateApiKeyRequest = z.infer<typeof CreateApiKeyRequest>;

/** An API key as listed: never the key or its hash. */
export const ApiKeyView = named(
  'ApiKeyView',
  z.object({
    id: z.string(),
    name: z.string(),
    role: Role,
    scope: ScopeView,
    prefix: z.string().describe("The key's first characters, which are not secret (to tell keys apart)."),
    createdAt: timestamp,
    lastUsedAt: timestamp.nullable(),
    revokedAt: timestamp.nullable(),
  }),
);
export type ApiKeyView = z.infer<typeof ApiKeyView>;

export const CreatedApiKey = named(
  'CreatedApiKey',
  z.object({
    id: z.string(),
    name: z.string(),
    role: Role,
    scope: ScopeView,
    key: z.string().describe('Shown once; only its hash is stored.'),
  }),
);
export type CreatedApiKey = z.infer<typeof CreatedApiKey>;

const auditTime = z
  .string()
  .refine((v) => !Number.isNaN(Date.parse(v)), 'must be a time, e.g. 2026-12-01T09:00:00Z')
  .describe('An ISO-8601 time, e.g. 2026-12-01T09:00:00Z.');

export const AuditQuery = z.object({
  actor: z.string().min(1).max(200).optional().describe("Only events by this actor: its id (an API key's or user's id) or its name, any case."),
  kind: z
    .string()
    .min(1)
    .max(100)
    .optional()
    .describe('Only events of this kind (`apikey.created`) or family (`apikey`); docs/security.md lists them.'),
  since: auditTime.optional().describe('Only events at or after this time (ISO-8601).'),
  until: auditTime.optional().describe('Only events before this time (ISO-8601).'),
  before: queryInt(1, Number.MAX_SAFE_INTEGER).optional().describe('Only events older than this event id: pass the last id seen to read the next page.'),
  limit: queryInt(1, 1000).optional().describe('At most this many events, newest first (default 100).'),
});
export type AuditQuery = z.infer<typeof AuditQuery>;

const auditParty = z.object({ kind: z.string(), id: z.string().nullable(), name: z.string().nullable() });

/** One event of the audit log. */
export const AuditEventView = named(
  'AuditEventView',
  z.object({
    id: z.number().int().describe('Increasing in the order events were stored, on every node.'),
    at: timestamp,
    node: z.string().describe('The server node that recorded it.'),
    actor: auditParty.describe('Who: kind `user`, `api-key`, `join-token`, `machine` or `system`, with id and name as they were then.'),
    kind: z.string().describe('What happened, e.g. `machine.registered`.'),
    target: auditParty.nullable().describe('What it happened to.'),
    address: z.string().nullable().describe("The client's address (the PROXY protocol's when Reef runs behind HAProxy or nginx); null without a connection."),
    details: z.record(z.unknown()).nullable(),
  }),
);
export type AuditEventView = z.infer<typeof AuditEventView>;
// ---- join tokens ----

/** How an installed Tentacle polls: the comms port, the HTTPS port (routed by SNI or ALPN), or a WebSocket on it. */
export { INSTALL_CARRIERS };
export const InstallCarrier = z.enum(INSTALL_CARRIERS);
export type InstallCarrier = z.infer<typeof InstallCarrier>;

export const InstallOptions = named(
  'InstallOptions',
  z.object({
    carrier: InstallCarrier.default('comms-port').describe(
      '`comms-port`: poll the comms port (10943); `https`: poll the HTTPS port, routed to comms by SNI/ALPN (443 when the server listens there); `websocket`: a WebSocket on the HTTPS port.',
    ),
    commsAddress: z.string().trim().url().max(500).optional().describe(
      'For `https`: the https:// address to poll (default the server\'s own, routed by ALPN); for `websocket`: the wss:// URL (default the server\'s WebSocket path).',
    ),
    proxy: z.string().trim().url().max(500).optional().describe('An HTTP proxy the machine reaches the server through, http://[user:password@]host:port.'),
    serverUrl: z.string().trim().url().max(500).optional().describe('The https:// address machines reach the server by (default the address this request was sent to).'),
  }).strict(),
);
export type InstallOptions = z.infer<typeof InstallOptions>;

export const CreateJoinTokenRequest = named(
  'CreateJoinTokenRequest',
  z.object({
    environments: z.array(name).max(100).optional().describe('Targets: the environments a machine may join (with `roles`).'),
    roles: z.array(name).max(100).optional().describe('Targets: the roles a machine may have.'),
    workerPools: z.array(name).max(100).optional().describe('Workers: the pools a machine may join (instead of environments and roles).'),
    uses: z.number().int().min(1).max(10_000).optional().describe('How many machines may register with it (default 1).'),
    expiresInSeconds: z.number().int().min(60).max(30 * 24 * 3600).optional().describe('Lifetime in seconds (default 3600, at most 30 days).'),
    install: InstallOptions.optional().describe('Also make the command line that installs a Tentacle and registers it with this token.'),
  }).strict(),
);
export type CreateJoinTokenRequest = z.infer<typeof CreateJoinTokenRequest>;

export const JoinTokenView = named(
  'JoinTokenView',
  z.object({
    id: z.string(),
    kind: MachineKind,
    environments: z.array(z.string()),
    roles: z.array(z.string()),
    workerPools: z.array(z.string()),
    uses: z.number().int(),
    usesLeft: z.number().int(),
    state: z.enum(['active', 'revoked', 'used-up', 'expired']),
    createdBy: z.string(),
    createdAt: timestamp,
    expiresAt: timestamp,
    lastUsedAt: timestamp.nullable(),
    revokedAt: timestamp.nullable(),
  }),
);
export type JoinTokenView = z.infer<typeof JoinTokenView>;

export const CreatedJoinToken = named(
  'CreatedJoinToken',
  JoinTokenView.extend({
    token: z.string().describe('Shown once; only its hash is stored.'),
    installCommand: z.string().optional().describe('With `install`: one line to run as root on a Linux machine.'),
  }),
);
export type CreatedJoinToken = z.infer<typeof CreatedJoinToken>;
/** A portal user as listed: never the password or its hash. */
export const UserView = named(
  'UserView',
  z.object({
    id: z.string(),
    username: z.string(),
    role: Role,
    scope: ScopeView,
    createdAt: timestamp,
    disabledAt: timestamp.nullable().describe('Set while the user may not sign in.'),
  }),
);
export type UserView = z.infer<typeof UserView>;

const newPassword = z.string().min(12, 'must be at least 12 characters').max(1024, 'must be at most 1024 characters');

export const CreateUserRequest = named(
  'CreateUserRequest',
  z.object({
    username: name,
    ...accessFields,
    password: newPassword.optional().describe('Leave out to have one generated (returned once).'),
  }).strict(),
);
export type CreateUserRequest = z.infer<typeof CreateUserRequest>;

export const UserAccessRequest = named('UserAccessRequest', z.object(accessFields).strict());
export type UserAccessRequest = z.infer<typeof UserAccessRequest>;

export const ResetPasswordRequest = named(
  'ResetPasswordRequest',
  z.object({ password: newPassword.optional().describe('Leave out to have one generated (returned once).') }).strict(),
);
export type ResetPasswordRequest = z.infer<typeof ResetPasswordRequest>;

/** A user and the password just set: the only time it is shown. */
export const UserWithPassword = named(
  'UserWithPassword',
  z.object({ user: UserView, password: z.string().describe('Shown once; only its scrypt hash is stored.') }),
);
export type UserWithPassword = z.infer<typeof UserWithPassword>;

export const ChangePasswordRequest = named(
  'ChangePasswordRequest',
  z.object({ currentPassword: z.string().min(1).max(1024), newPassword }).strict(),
);
export type ChangePasswordRequest = z.infer<typeof ChangePasswordRequest>;

/** `details` of a 403 REEF_FORBIDDEN. */
export const Forbidden = named(
  'Forbidden',
  z.object({
    attempted: z.string().describe('The route (`POST /api/tasks`) or page asked for.'),
    permission: z.string().describe('The permission it needs.'),
    role: Role.describe("The caller's role."),
    scope: ScopeView,
    allowedRoles: z.array(Role).describe('The roles that have the permission.'),
    needsWholeServer: z.boolean().describe('The role has it, but a scoped caller cannot: it covers the whole server.'),
  }),
);

export const StartCertificateRotationRequest = named(
  'StartCertificateRotationRequest',
  z
    .object({
      graceSeconds: z
        .number()
        .int()
        .min(0)
        .max(366 * 24 * 3600)
        .optional()
        .describe('How long after completion Tentacles are told to drop the old thumbprint (default 86400: a day), so every node has switched first.'),
    })
    .strict(),
);
export type StartCertificateRotationRequest = z.infer<typeof StartCertificateRotationRequest>;

export const CertificateRotationView = named(
  'CertificateRotationView',
  z.object({
    id: z.string(),
    state: z.enum(['under-way', 'completed']),
    oldThumbprint: z.string().describe('The certificate presented before the rotation (and, after it, to Tentacles that ask for it by thumbprint).'),
    newThumbprint: z.string(),
    startedBy: z.string(),
    startedAt: timestamp,
    completedAt: timestamp.nullable(),
    graceSeconds: z.number().int(),
    dropOldAfter: timestamp.nullable().describe('Completion plus the grace period: from then Tentacles are told to drop the old thumbprint.'),
    machines: z.number().int().describe('Registered machines.'),
    trusting: z.number().int().describe('Machines that confirmed trusting the new thumbprint.'),
    dropped: z.number().int().describe('Machines that confirmed dropping the old thumbprint.'),
    notTrusting: z
      .array(z.object({ id: z.string(), name: z.string(), thumbprint: z.string(), lastSeenAt: timestamp.nullable(), connected: z.boolean() }))
      .describe('Machines that have not confirmed trusting the new thumbprint yet (offline ones, or too old to understand trust.add), by name.'),
  }),
);
export type CertificateRotationView = z.infer<typeof CertificateRotationView>;

/** The events of GET /api/tasks/:id/log/stream, by name: each `data:` is the JSON of its schema. */
export const LOG_STREAM_EVENTS = {
  log: LogLineView,
  state: TaskView,
  /** Last: the task is final and every line was sent. */
  end: named('LogStreamEnd', z.object({}).strict()),
} as const;

/** `{"items": [...]}`, the shape of every list. */
export function itemsOf<T extends z.ZodTypeAny>(item: T) {
  return z.object({ items: z.array(item) });
}

export const FINAL_TASK_STATES: readonly TaskState[] = ['Success', 'Failed', 'Cancelled', 'TimedOut'];

/**
 * The Tentacle's RPC methods (src/api/tentacle-rpc.ts names them): thin adapters from the
 * wire onto the local services. Every argument object is checked here with zod, so a bad
 * call from a server (older, newer or buggy) ends in REEF_INVALID_ARGUMENT naming the
 * field, never in a half-run operation. Unknown fields are ignored rather than refused,
 * so a newer server can add optional fields without breaking older Tentacles.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import {
  TentacleMethods,
  type CapabilitiesWire,
  type PingWire,
  type ScriptStatusWire,
  type ScriptSummaryWire,
  type UploadResultWire,
} from '../api/tentacle-rpc.js';
import { StreamingResult, type CallContext, type Handler, type ServiceTable } from '../comms/index.js';
import { ReefError } from '../errors.js';
import type { Logger } from '../logging.js';
import type { CapabilitiesService } from './services/capabilities.js';
import type { FileService } from './services/files.js';
import type { ScriptService, ScriptStatus } from './services/scripts.js';

export interface TentacleServicesOptions {
  scripts: ScriptService;
  files: FileService;
  capabilities: CapabilitiesService;
  logger: Logger;
  /** How often a long-polling scripts.status looks for new lines. Default 50 ms (the script service's own tick). */
  statusPollMs?: number;
}

/** The longest a scripts.status call may wait for news; larger waitMs values are capped. */
export const MAX_STATUS_WAIT_MS = 30_000;

// ---- argument schemas -------------------------------------------------------------

const ticket = z
  .string({ required_error: 'is required', invalid_type_error: 'must be a string' })
  .regex(/^[A-Za-z0-9_-]{1,100}$/, 'must be 1 to 100 characters from A-Z, a-z, 0-9, "_" and "-"');
const wholeNumber = (what = 'a whole number') => z.number({ required_error: 'is required', invalid_type_error: `must be ${what}` }).int(`must be ${what}`);
const absolutePath = z
  .string({ required_error: 'is required', invalid_type_error: 'must be a string' })
  .min(1, 'must not be empty')
  .refine((p) => (p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p)) && !p.includes('\0'), 'must be an absolute path');
const sha256 = z.string({ required_error: 'is required', invalid_type_error: 'must be a string' }).regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hexadecimal digits');
const noArgs = z.object({}).passthrough().nullish();

export const StartScriptSchema = z.object({
  ticket,
  syntax: z.enum(['bash', 'sh', 'powershell'], { errorMap: () => ({ message: 'must be "bash", "sh" or "powershell"' }) }),
  body: z.string({ required_error: 'is required', invalid_type_error: 'must be a string holding the script' }),
  timeoutMs: wholeNumber().positive('must be > 0').optional(),
  args: z.array(z.string({ invalid_type_error: 'must be strings' })).optional(),
  env: z.record(z.string({ invalid_type_error: 'values must be strings' })).optional(),
  cwd: absolutePath.optional(),
});

export const ScriptStatusSchema = z.object({
  ticket,
  afterSeq: wholeNumber().min(0, 'must be >= 0'),
  maxLines: wholeNumber().min(1, 'must be from 1 to 10000').max(10_000, 'must be from 1 to 10000').optional(),
  waitMs: wholeNumber('a whole number of milliseconds').min(0, 'must be >= 0').optional(),
});

export const TicketSchema = z.object({ ticket });

export const UploadTargetSchema = z.object({
  path: absolutePath,
  size: wholeNumber('a whole number of bytes').min(0, 'must be >= 0'),
  sha256,
});

export const UploadSchema = UploadTargetSchema.extend({ offset: wholeNumber('a whole number of bytes').min(0, 'must be >= 0') });

export const DownloadSchema = z.object({
  path: absolutePath,
  offset: wholeNumber('a whole number of bytes').min(0, 'must be >= 0').optional(),
  /** Hash the whole file first and answer with its SHA-256. */
  sha256: z.boolean({ invalid_type_error: 'must be true or false' }).optional(),
});
export type DownloadArgs = z.infer<typeof DownloadSchema>;

export interface DownloadResultWire {
  path: string;
  size: number;
  offset: number;
  sha256?: string;
}

export const StatSchema = z.object({ path: absolutePath });

export interface FileStatWire {
  path: string;
  exists: boolean;
  type?: 'file' | 'directory' | 'other';
  size?: number;
  modifiedAt?: string;
}

/** Parses `args` or throws REEF_INVALID_ARGUMENT naming every bad field. */
export function parseArgs<S extends z.ZodTypeAny>(method: string, schema: S, args: unknown): z.output<S> {
  const parsed = schema.safeParse(args);
  if (parsed.success) return parsed.data as z.output<S>;
  const problems = parsed.error.issues.map((issue) => {
    const field = issue.path.length ? issue.path.join('.') : 'arguments';
    // zod's "Required" for a missing object means no argument object was sent at all.
    return issue.path.length === 0 && issue.code === 'invalid_type' ? `arguments must be an object (got ${describeType(args)})` : `${field} ${issue.message}`;
  });
  throw new ReefError('REEF_INVALID_ARGUMENT', `Invalid arguments for ${method}: ${problems.join('; ')}.`);
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

// ---- the table --------------------------------------------------------------------

/** Every method in TentacleMethods, served by the given local services. */
export function createTentacleServices(options: TentacleServicesOptions): ServiceTable {
  const { scripts, files, capabilities, logger } = options;
  const statusPollMs = options.statusPollMs ?? 50;
  const M = TentacleMethods;

  const table: Record<(typeof M)[keyof typeof M], Handler> = {
    [M.capabilities]: async (args) => {
      parseArgs(M.capabilities, noArgs, args);
      const caps = await capabilities.capabilities();
      return { ...caps, shells: { ...caps.shells } } satisfies CapabilitiesWire;
    },

    [M.ping]: async (args, ctx) => {
      parseArgs(M.ping, noArgs, args);
      // How this connection was dialled, as only the Tentacle knows it (e.g. through a proxy).
      return { time: new Date().toISOString(), carrier: ctx.peer.carrier } satisfies PingWire;
    },

    [M.startScript]: async (args) => {
      const request = parseArgs(M.startScript, StartScriptSchema, args);
      const summary = await scripts.start(request);
      logger.debug({ ticket: request.ticket, state: summary.state }, 'rpc: scripts.start');
      return summary satisfies ScriptSummaryWire;
    },

    [M.scriptStatus]: async (args, ctx) => {
      const request = parseArgs(M.scriptStatus, ScriptStatusSchema, args);
      return (await longPollStatus(scripts, request, ctx, statusPollMs)) satisfies ScriptStatusWire;
    },

    [M.cancelScript]: async (args) => {
      const { ticket } = parseArgs(M.cancelScript, TicketSchema, args);
      return (await scripts.cancel({ ticket })) satisfies ScriptSummaryWire;
    },

    [M.completeScript]: async (args) => {
      const { ticket } = parseArgs(M.completeScript, TicketSchema, args);
      return await scripts.complete({ ticket });
    },

    [M.beginUpload]: async (args) => {
      const target = parseArgs(M.beginUpload, UploadTargetSchema, args);
      return await files.beginUpload(target);
    },

    [M.upload]: async (args, ctx) => {
      const request = parseArgs(M.upload, UploadSchema, args);
      if (!ctx.body) {
        throw new ReefError('REEF_INVALID_ARGUMENT', `Invalid call to ${M.upload}: the file's bytes must be sent as the call's streamed body, and none came.`);
      }
      return (await files.upload(request, ctx.body)) satisfies UploadResultWire;
    },

    [M.download]: async (args, ctx) => {
      const request = parseArgs(M.download, DownloadSchema, args);
      const { body, ...result } = await files.download(request);
      // The caller went away while the file was being opened or hashed: let go of the handle.
      if (ctx.signal.aborted) {
        body.destroy();
        throw ctx.signal.reason;
      }
      return new StreamingResult(result satisfies DownloadResultWire, body);
    },

    [M.stat]: async (args) => {
      const request = parseArgs(M.stat, StatSchema, args);
      return (await files.stat(request)) satisfies FileStatWire;
    },
  };
  return new Map(Object.entries(table));
}

/**
 * scripts.status with an optional long poll: answers at once when there are lines past
 * afterSeq or the script is no longer Running, otherwise looks again every `pollMs` until
 * one of those happens or `waitMs` (at most MAX_STATUS_WAIT_MS) has passed. The script
 * service keeps no change notifications, and re-reading the durable log is cheap (it is
 * indexed), so a short poll here is simpler than a second source of truth.
 */
async function longPollStatus(
  scripts: ScriptService,
  request: z.output<typeof ScriptStatusSchema>,
  ctx: CallContext,
  pollMs: number,
): Promise<ScriptStatus> {
  const { waitMs = 0, ...query } = request;
  const deadline = Date.now() + Math.min(waitMs, MAX_STATUS_WAIT_MS);
  for (;;) {
    const status = await scripts.status(query);
    const remaining = deadline - Date.now();
    if (status.lines.length > 0 || status.state !== 'Running' || remaining <= 0) return status;
    try {
      await sleep(Math.min(pollMs, remaining), undefined, { signal: ctx.signal });
    } catch {
      throw ctx.signal.reason ?? new ReefError('REEF_CALL_CANCELLED', 'The status call was cancelled.');
    }
  }
}

/**
 * The Tentacle's RPC methods (the contract in src/api/tentacle/ names and types them):
 * thin adapters from the wire onto the local services. Every argument object is checked
 * against the contract, so a bad call from a server (older, newer or buggy) ends in
 * REEF_INVALID_ARGUMENT naming the field, never in a half-run operation. Unknown fields are
 * ignored rather than refused, so a newer server can add optional fields without breaking
 * older Tentacles.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import {
  parseArgs,
  TENTACLE_METHODS,
  type ParsedArgsOf,
  type ResultOf,
  type ScriptStatus,
  type TentacleMethod,
} from '../api/tentacle/index.js';
import { StreamingResult, type CallContext, type Handler, type ServiceTable } from '../comms/index.js';
import { ReefError } from '../errors.js';
import type { Logger } from '../logging.js';
import type { CapabilitiesService } from './services/capabilities.js';
import type { FileService } from './services/files.js';
import type { ScriptService } from './services/scripts/index.js';
import type { TrustService } from './services/trust.js';
import type { CertificateRotationService } from './certificate-rotation.js';
import type { UpgradeService } from './upgrade/service.js';

export interface TentacleServicesOptions {
  scripts: ScriptService;
  files: FileService;
  capabilities: CapabilitiesService;
  /** Absent where nothing may change the trust list (service tests): trust.* calls are refused. */
  trust?: TrustService;
  /** Absent where the certificate cannot change (service tests): certificate.* calls are refused. */
  certificates?: CertificateRotationService;
  /** Absent where the Tentacle cannot upgrade itself (service tests): upgrade.* calls are refused. */
  upgrade?: UpgradeService;
  logger: Logger;
  /** How often a long-polling scripts.status looks for new lines. Default 50 ms (the script service's own tick). */
  statusPollMs?: number;
}

/** The longest a scripts.status call may wait for news; larger waitMs values are capped. */
const MAX_STATUS_WAIT_MS = 30_000;

/** A method's answer as the contract types it; a method that streams a body answers with it too. */
type Answer<M extends TentacleMethod> = (typeof TENTACLE_METHODS)[M] extends { streamsBody: true }
  ? { result: ResultOf<M>; body: Readable }
  : ResultOf<M>;

/** One implementation per method of the contract: a missing or mistyped one does not compile. */
type ContractHandlers = { [M in TentacleMethod]: (args: ParsedArgsOf<M>, ctx: CallContext) => Promise<Answer<M>> };

/** Every method of the contract, served by the given local services. */
export function createTentacleServices(options: TentacleServicesOptions): ServiceTable {
  const { scripts, files, capabilities, trust, certificates, upgrade, logger } = options;
  const statusPollMs = options.statusPollMs ?? 50;
  const trustService = (): TrustService => {
    if (!trust) throw new ReefError('REEF_TRUST_CHANGE_REFUSED', 'This Tentacle has no trust list that can be changed remotely.');
    return trust;
  };
  const certificateService = (): CertificateRotationService => {
    if (!certificates) throw new ReefError('REEF_CERTIFICATE_SWITCH_REFUSED', 'This Tentacle cannot change its certificate remotely.');
    return certificates;
  };
  const upgradeService = (): UpgradeService => {
    if (!upgrade) throw new ReefError('REEF_UPGRADE_UNSUPPORTED', 'This Tentacle cannot self-upgrade here.');
    return upgrade;
  };

  const handlers: ContractHandlers = {
    'capabilities.get': async () => {
      const caps = await capabilities.capabilities();
      return { ...caps, shells: { ...caps.shells } };
    },

    // How this connection was dialled, as only the Tentacle knows it (e.g. through a proxy).
    'health.ping': async (_args, ctx) => ({ time: new Date().toISOString(), carrier: ctx.peer.carrier }),

    'scripts.start': async (request) => {
      const summary = await scripts.start(request);
      logger.debug({ ticket: request.ticket, state: summary.state }, 'rpc: scripts.start');
      return summary;
    },

    'scripts.status': (request, ctx) => longPollStatus(scripts, request, ctx, statusPollMs),

    'scripts.cancel': ({ ticket }) => scripts.cancel({ ticket }),

    'scripts.complete': ({ ticket }) => scripts.complete({ ticket }),

    'files.beginUpload': (target) => files.beginUpload(target),

    'files.upload': async (request, ctx) => {
      if (!ctx.body) {
        throw new ReefError('REEF_INVALID_ARGUMENT', 'Invalid call to files.upload: the file\'s bytes must be sent as the call\'s streamed body, and none came.');
      }
      return files.upload(request, ctx.body);
    },

    'files.download': async (request, ctx) => {
      const { body, ...result } = await files.download(request);
      // The caller went away while the file was being opened or hashed: let go of the handle.
      if (ctx.signal.aborted) {
        body.destroy();
        throw ctx.signal.reason;
      }
      return { result, body };
    },

    'files.stat': (request) => files.stat(request),

    // The server that asks is the one this link is pinned to (ctx.peer), checked by guardTrust.
    'trust.add': async ({ thumbprint }, ctx) => ({ trusted: await trustService().add(thumbprint, ctx.peer.thumbprint) }),

    'trust.drop': async ({ thumbprint }, ctx) => ({ trusted: await trustService().drop(thumbprint, ctx.peer.thumbprint) }),

    'certificate.state': () => certificateService().state(),

    'certificate.prepareNext': () => certificateService().prepareNext(),

    'certificate.switch': ({ thumbprint }) => certificateService().switchTo(thumbprint),

    'certificate.forgetPrevious': ({ thumbprint }) => certificateService().forgetPrevious(thumbprint),
    'upgrade.begin': (target) => upgradeService().begin(target),

    'upgrade.upload': async (request, ctx) => {
      if (!ctx.body) {
        throw new ReefError('REEF_INVALID_ARGUMENT', "Invalid call to upgrade.upload: the executable's bytes must be sent as the call's streamed body, and none came.");
      }
      return upgradeService().upload(request, ctx.body);
    },

    'upgrade.apply': (request) => upgradeService().apply(request),

    'upgrade.status': async () => {
      if (!upgrade) return { version: (await capabilities.capabilities()).tentacleVersion, state: 'none' as const };
      return upgrade.status();
    },
  };

  return new Map(
    (Object.keys(handlers) as TentacleMethod[]).map((method): [string, Handler] => [method, serve(method, handlers[method] as GenericHandler)]),
  );
}

type GenericHandler = (args: unknown, ctx: CallContext) => Promise<unknown>;

/** Checks the arguments against the contract, then runs the handler; a streamed answer goes out as one. */
function serve(method: TentacleMethod, handler: GenericHandler): Handler {
  const streams = 'streamsBody' in TENTACLE_METHODS[method];
  return async (args, ctx) => {
    const answer = await handler(parseArgs(method, args), ctx);
    if (!streams) return answer;
    const { result, body } = answer as { result: unknown; body: Readable };
    return new StreamingResult(result, body);
  };
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
  request: ParsedArgsOf<'scripts.status'>,
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

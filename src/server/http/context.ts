import type { CertificateRotator } from '../certificate-rotation.js';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { ServerInfo } from '../../api/contract.js';
import type { CommsServer } from '../../comms/index.js';
import type { Logger } from '../../logging.js';
import type { FailureLimiter } from '../auth/failure-limiter.js';
import type { AuditLog } from '../audit/log.js';
import type { BlobStore } from '../files/blobs.js';
import type { ServerMetrics } from '../metrics/metrics.js';
import type { Actor } from '../auth/roles.js';
import type { ApiKey, JoinToken, Store } from '../store/types.js';
import type { TaskEngineApi } from '../tasks/api.js';

export interface ApiLimits {
  /** Largest JSON request body. Default 8 MiB. */
  maxJsonBytes?: number;
  /** Largest file upload. Default 10 GiB. */
  maxUploadBytes?: number;
  /** Failed API key attempts per remote address per minute before 429. Default 20. */
  authFailuresPerMinute?: number;
  /** Interval of `: ping` comments on event streams. Default 15 s. */
  sseHeartbeatMs?: number;
  /** Requests per minute per API key or portal user (also the largest burst) before 429. Default 3000. */
  requestsPerMinutePerActor?: number;
  /** Requests per minute per client address without credentials (public routes) before 429. Default 600. */
  requestsPerMinutePerAddress?: number;
}

export interface ApiDeps {
  store: Store;
  engine: TaskEngineApi;
  comms: CommsServer;
  blobs: BlobStore;
  info: ServerInfo;
  logger: Logger;
  limits?: ApiLimits;
  /** Serves every path outside /api (the web portal); without it those paths answer 404. */
  portal?: RequestListener;
  /** What /metrics serves; without it /metrics answers 404. */
  metrics?: ServerMetrics;
  /** Where changes are recorded; default an audit log on `store` for `info.nodeName`. */
  audit?: AuditLog;
  /** What install commands (POST /api/tokens with `install`) are made of; without it they are refused. */
  install?: InstallFacts;
  /** Server certificate rotation; without it /api/server/certificate-rotation refuses. */
  rotation?: CertificateRotator;
  /** Counts failed API keys per address; pass the one registrations over comms use too (createAuthLimiter). */
  authLimiter?: FailureLimiter;
}

/** The server's side of an install command (src/server/install/tentacle-install.ts). */
export interface InstallFacts {
  /** `sha256//...` of the HTTPS certificate's public key, now (the certificate may be reloaded). */
  publicKeyPin(): string;
  /** Thumbprint of the HTTPS certificate, now. */
  portalThumbprint(): string;
  websocketPath: string;
}

export interface ResolvedDeps extends ApiDeps {
  limits: Required<ApiLimits>;
  audit: AuditLog;
}

export const DEFAULT_LIMITS: Readonly<Required<ApiLimits>> = {
  maxJsonBytes: 8 * 1024 * 1024,
  maxUploadBytes: 10 * 1024 * 1024 * 1024,
  authFailuresPerMinute: 20,
  sseHeartbeatMs: 15_000,
  requestsPerMinutePerActor: 3000,
  requestsPerMinutePerAddress: 600,
};

/** What a route handler gets for one request. */
export interface ApiContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  /** The authenticated key (null only on public routes). */
  key: ApiKey | null;
  /** The portal user, when the request came with a session cookie instead of a key. */
  user?: { id: string; username: string; sessionIdHash: string };
  /** Who asks, with role and scope: the key or the user (null only on public routes and for join tokens). Handlers apply its scope. */
  actor: Actor | null;
  /** The join token a registration came with (only on routes declared with `joinToken`); no use taken yet. */
  joinToken?: JoinToken;
  deps: ResolvedDeps;
  logger: Logger;
}

export type RouteHandler = (ctx: ApiContext) => Promise<void>;

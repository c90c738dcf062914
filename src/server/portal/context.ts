import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TentacleRelease } from '../tentacle-releases/index.js';
import type { NodeView, ServerInfo } from '../../api/contract.js';
import type { TentacleLinks } from '../tasks/api.js';
import type { CommsServer } from '../../comms/index.js';
import type { Logger } from '../../logging.js';
import type { Actor } from '../auth/roles.js';
import type { AuditLog } from '../audit/log.js';
import type { Session, Store, User } from '../store/types.js';

export interface PortalOptions {
  /** Session lifetime. Default 12 h. */
  sessionTtlMs?: number;
  /** Failed sign-ins per remote address per minute before 429. Default 10. */
  signInFailuresPerMinute?: number;
  /** Where the static assets live. Default: the repository's web/ folder. */
  webDir?: string;
}

export interface PortalDeps {
  store: Store;
  comms: CommsServer;
  info: ServerInfo;
  logger: Logger;
  /** Every server node on the store (the task engine knows them). */
  nodes(): Promise<NodeView[]>;
  /** Which live nodes each tentacle is connected to. */
  links(): Promise<TentacleLinks>;
  /** The Tentacle executables the server distributes, for "upgrade available". */
  releases?(): Promise<TentacleRelease[]>;
  /** After each successful sign-in (the first one deletes the first-run credentials file). */
  onSignedIn?(user: User): Promise<void>;
  /** Where sign-ins are recorded; default an audit log on `store` for `info.nodeName`. */
  audit?: AuditLog;
  options?: PortalOptions;
}

/** What a page gets for one request by a signed-in user. */
export interface PageContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  session: Session;
  /** The signed-in user with role and scope: pages show only what it may see and offer only what it may do. */
  actor: Actor;
  deps: PortalDeps;
}

export type PageHandler = (ctx: PageContext) => Promise<void>;

import type { IncomingMessage, ServerResponse } from 'node:http';
import { AuditLog } from '../audit/log.js';
import { requestActor } from '../audit/actor.js';
import { auditRefusedKey, auditRefusedToken, JOIN_TOKEN_REFUSALS } from '../audit/request.js';
import { FailureLimiter } from '../auth/failure-limiter.js';
import { authorize, type Permission } from '../auth/roles.js';
import { clientAddress } from '../https/client-address.js';
import { actorOf, authenticateRequest } from './auth.js';
import { DEFAULT_LIMITS, type ApiContext, type ApiDeps, type ApiLimits, type ResolvedDeps, type RouteHandler } from './context.js';
import { ReefError } from '../../errors.js';
import { HttpError, sendError } from './errors.js';
import { RequestBudgets } from './request-budgets.js';
import { drainRequest, setSecurityHeaders } from './respond.js';
import { Router } from './router.js';
import { API_ROUTES } from './routes/index.js';
import { serveMetrics } from './routes/metrics.js';
import { METRICS_PATH } from '../metrics/http.js';

interface Entry {
  handler: RouteHandler;
  public: boolean;
  joinToken: boolean;
  /** Checked here, for every route, after authentication and before its handler reads anything; null when public. */
  permission: Permission | null;
}

/**
 * The REST API as a plain request listener: mount it on any https.Server (or one the
 * front door feeds sockets to). It holds no timers and no sockets of its own; the only
 * state is the per-address count of failed API key attempts and the request budgets.
 */
export function createApiHandler(deps: ApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const limits = { ...DEFAULT_LIMITS, ...definedOnly(deps.limits ?? {}) };
  const audit = deps.audit ?? new AuditLog({ store: deps.store, node: deps.info.nodeName, logger: deps.logger });
  const resolved: ResolvedDeps = { ...deps, limits, audit };
  const limiter = deps.authLimiter ?? createAuthLimiter(limits);
  const budgets = new RequestBudgets(limits);
  const router = new Router<Entry>();
  for (const route of API_ROUTES) router.add(route.method, route.path, { handler: route.run, public: route.public, joinToken: route.joinToken, permission: route.permission });
  router.add('GET', METRICS_PATH, { handler: serveMetrics, public: false, joinToken: false, permission: 'metrics:read' });

  return (req, res) => {
    void handle(req, res, resolved, router, limiter, budgets);
  };
}

/** Failed API key attempts per address; one per server, shared by the REST API and registrations over comms. */
export function createAuthLimiter(limits: ApiLimits = {}): FailureLimiter {
  return new FailureLimiter({ maxFailures: limits.authFailuresPerMinute ?? DEFAULT_LIMITS.authFailuresPerMinute });
}

async function handle(req: IncomingMessage, res: ServerResponse, deps: ResolvedDeps, router: Router<Entry>, limiter: FailureLimiter, budgets: RequestBudgets): Promise<void> {
  const started = Date.now();
  const method = req.method ?? 'GET';
  let path = '(unparsed)';
  let keyId: string | undefined;
  let userName: string | undefined;
  let tokenId: string | undefined;
  setSecurityHeaders(res);
  res.once('finish', () => {
    // Method, path and key id only: never headers (they carry the key) or query values.
    deps.logger.debug({ method, path, status: res.statusCode, ms: Date.now() - started, apiKey: keyId, user: userName, joinToken: tokenId }, 'api: request');
  });
  try {
    const url = new URL(req.url ?? '/', 'https://reef.invalid');
    path = url.pathname;
    if (deps.portal && url.pathname !== '/api' && !url.pathname.startsWith('/api/') && url.pathname !== METRICS_PATH) {
      deps.portal(req, res);
      return;
    }
    const match = router.match(method, url.pathname);
    if (match.kind === 'not-found') {
      throw new HttpError('REEF_NO_ROUTE', `No API route matches ${method} ${url.pathname}. The routes are listed in docs/api.md.`);
    }
    if (match.kind === 'wrong-method') {
      const allow = match.allow.join(', ');
      throw new HttpError('REEF_METHOD_NOT_ALLOWED', `${url.pathname} does not accept ${method}; it accepts ${allow}.`, { headers: { allow } });
    }
    if (match.handler.public || !RequestBudgets.carriesCredentials(req)) budgets.chargeAddress(clientAddress(req));
    const principal = match.handler.public ? null : await authenticateRequest(req, deps.store, limiter, match.handler.joinToken);
    const key = principal?.key ?? null;
    const user = principal?.session ? { id: principal.session.userId, username: principal.session.username, sessionIdHash: principal.session.idHash } : undefined;
    keyId = key?.id;
    userName = user?.username;
    tokenId = principal?.joinToken?.id;
    const joinToken = principal?.joinToken;
    const requester = requestActor({ key, user, joinToken });
    if (requester) budgets.chargeActor(requester);
    // A join token has no role: it may only register, within its own scope (routes/machines.ts).
    const actor = principal && !joinToken ? actorOf(principal) : null;
    if (actor && match.handler.permission) authorize(actor, match.handler.permission, `${method} ${match.pattern}`);
    const ctx: ApiContext = { req, res, params: match.params, query: url.searchParams, key, user, actor, ...(joinToken ? { joinToken } : {}), deps, logger: deps.logger };
    await match.handler.handler(ctx);
  } catch (err) {
    if (err instanceof HttpError && err.code === 'REEF_TOO_MANY_REQUESTS') {
      // A script over its budget can send many of these: one line each, below warn.
      deps.logger.info({ method, path, remote: clientAddress(req), apiKey: keyId, user: userName }, 'api: request budget used up');
    } else if (err instanceof HttpError && (err.status === 401 || err.status === 403 || err.status === 429)) {
      // A 403 names who was refused (a role or scope refusal, or a missing CSRF token); the key id, never the key.
      deps.logger.warn({ method, path, remote: clientAddress(req), code: err.code, apiKey: keyId, user: userName }, err.status === 403 ? 'api: request refused' : 'api: authentication refused');
      if (err.code === 'REEF_BAD_API_KEY') await auditRefusedKey(deps.audit, req);
    }
    if (err instanceof ReefError && JOIN_TOKEN_REFUSALS.has(err.code)) await auditRefusedToken(deps.audit, req, err.code, tokenId);
    if (res.destroyed || req.socket.destroyed) {
      // The client is gone (an upload cut off): nobody to answer.
      deps.logger.info({ method, path, err: err instanceof Error ? err.message : String(err) }, 'api: client went away');
      return;
    }
    sendError(res, err, deps.logger, { method, path });
    drainRequest(req);
  }
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { httpStatusOf } from '../../error-codes.js';
import { isReefError, ReefError } from '../../errors.js';
import { authorize, type Permission } from '../auth/roles.js';
import { clearedSessionCookie, CSRF_FIELD, csrfMatches, DEFAULT_SESSION_TTL_MS, endSession, findSession, randomToken, readCookie, SESSION_COOKIE, sessionCookie, startSession } from '../auth/sessions.js';
import { userActor } from '../audit/actor.js';
import { AuditLog } from '../audit/log.js';
import { checkCredentials } from '../auth/users.js';
import { FailureLimiter } from '../auth/failure-limiter.js';
import { HashingBusyError } from '../auth/scrypt-pool.js';
import { clientAddress } from '../https/client-address.js';
import { SESSION_CHALLENGE, WWW_AUTHENTICATE } from '../http/challenges.js';
import { drainRequest } from '../http/respond.js';
import { Router } from '../http/router.js';
import type { PageContext, PageHandler, PortalDeps } from './context.js';
import { html } from './html.js';
import { redirect, sendPage, setPortalHeaders } from './layout.js';
import { addMachinePage } from './pages/add-machine.js';
import { accountPage } from './pages/account.js';
import { apiKeysPage } from './pages/apikeys.js';
import { sessionActor, signedInAs } from './pages/common.js';
import { auditPage } from './pages/audit.js';
import { dashboardPage } from './pages/dashboard.js';
import { errorPage } from './pages/errors.js';
import { loginPage, type LoginView } from './pages/login.js';
import { machinePage } from './pages/machine.js';
import { newTaskPage } from './pages/new-task.js';
import { nodesPage } from './pages/nodes.js';
import { taskPage, tasksPage } from './pages/tasks.js';
import { usersPage } from './pages/users.js';
import { defaultWebDir, serveStatic } from './static.js';

/** Double-submit token for the sign-in form, which has no session yet. */
const LOGIN_COOKIE = 'reef_login';
const MAX_FORM_BYTES = 16 * 1024;

interface Page {
  permission: Permission;
  /** What the page is, for a refusal: "the API keys page". */
  what: string;
  handler: PageHandler;
}

/**
 * The web portal: server-rendered pages for everything outside /api. Pages read the
 * store directly; what they change goes through the REST API from the page scripts,
 * authenticated by the session cookie plus the CSRF token. Only sign-in and sign-out
 * are form posts handled here.
 */
export function createPortalHandler(deps: PortalDeps): RequestListener {
  const options = deps.options ?? {};
  const ttlMs = options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
  const webDir = options.webDir ?? defaultWebDir();
  const limiter = new FailureLimiter({ maxFailures: options.signInFailuresPerMinute ?? 10 });
  const audit = deps.audit ?? new AuditLog({ store: deps.store, node: deps.info.nodeName, logger: deps.logger });
  // Each page with the permission it needs (auth/roles.ts), checked below before it renders;
  // what it changes goes through the REST API, which checks again.
  const pages = new Router<Page>()
    .add('GET', '/', { permission: 'account:self', what: 'the dashboard', handler: dashboardPage })
    .add('GET', '/add-machine', { permission: 'tokens:manage', what: 'the Add machine page', handler: addMachinePage })
    .add('GET', '/machines/:idOrName', { permission: 'machines:read', what: 'a machine page', handler: machinePage })
    .add('GET', '/tasks', { permission: 'tasks:read', what: 'the tasks page', handler: tasksPage })
    .add('GET', '/tasks/new', { permission: 'tasks:write', what: 'the new task page', handler: newTaskPage })
    .add('GET', '/tasks/:id', { permission: 'tasks:read', what: 'a task page', handler: taskPage })
    .add('GET', '/nodes', { permission: 'nodes:read', what: 'the server nodes page', handler: nodesPage })
    .add('GET', '/apikeys', { permission: 'apikeys:manage', what: 'the API keys page', handler: apiKeysPage })
    .add('GET', '/users', { permission: 'users:manage', what: 'the users page', handler: usersPage })
    .add('GET', '/audit', { permission: 'audit:read', what: 'the audit log', handler: auditPage })
    .add('GET', '/account', { permission: 'account:self', what: 'the account page', handler: accountPage });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    setPortalHeaders(res);
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    const url = new URL(req.url ?? '/', 'https://reef.invalid');
    const path = url.pathname;

    if (path.startsWith('/static/') && method === 'GET') {
      if (!(await serveStatic(res, webDir, path.slice('/static/'.length)))) sendPage(res, 404, errorPage(404, 'Not found', 'There is no such file.'));
      return;
    }
    if (path === '/login') {
      if (method === 'GET') return showLogin(req, res, url);
      if (method === 'POST') return signIn(req, res);
      return methodNotAllowed(res, 'GET, HEAD, POST');
    }

    const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
    const session = await findSession(deps.store, cookie);
    if (path === '/logout') {
      if (method !== 'POST') return methodNotAllowed(res, 'POST');
      const form = await readForm(req);
      if (session && !csrfMatches(session, form.get(CSRF_FIELD) ?? undefined)) {
        return sendPage(res, 403, errorPage(403, 'Not signed out', 'The sign-out form was not sent by this portal (its CSRF token did not match). Reload the page and try again.'));
      }
      await endSession(deps.store, cookie);
      if (session) {
        deps.logger.info({ user: session.username }, 'portal: signed out');
        await audit.record({ actor: userActor({ id: session.userId, username: session.username }), kind: 'user.signed-out', address: clientAddress(req) });
      }
      return redirect(res, '/login?signedOut=1', [clearedSessionCookie()]);
    }

    if (!session) {
      if (method !== 'GET') {
        drainRequest(req);
        res.setHeader(WWW_AUTHENTICATE, SESSION_CHALLENGE);
        return sendPage(res, 401, errorPage(401, 'Signed out', 'Your session has ended; sign in again.'));
      }
      return redirect(res, `/login?${new URLSearchParams({ next: path + url.search })}`, cookie ? [clearedSessionCookie()] : []);
    }
    const actor = sessionActor(session);
    const user = signedInAs(session, actor);
    const match = pages.match(method, path);
    if (match.kind === 'not-found') return sendPage(res, 404, errorPage(404, 'Not found', `There is no page at ${path}.`, user));
    if (match.kind === 'wrong-method') return methodNotAllowed(res, match.allow.join(', '));
    try {
      authorize(actor, match.handler.permission, match.handler.what);
    } catch (err) {
      if (!isReefError(err, 'REEF_FORBIDDEN')) throw err;
      deps.logger.warn({ user: session.username, role: actor.role, path }, 'portal: page refused by role');
      return sendPage(res, 403, errorPage(403, 'Not allowed', err.message, user));
    }
    const ctx: PageContext = { req, res, url, params: match.params, session, actor, deps };
    await match.handler.handler(ctx);
  }

  async function showLogin(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const next = safeNext(url.searchParams.get('next'));
    if (await findSession(deps.store, readCookie(req.headers.cookie, SESSION_COOKIE))) return redirect(res, next);
    const info = url.searchParams.has('signedOut') ? 'You are signed out.' : undefined;
    renderLogin(res, 200, { next, info });
  }

  function renderLogin(res: ServerResponse, status: number, view: Omit<LoginView, 'token'>): void {
    const token = randomToken();
    res.setHeader('set-cookie', `${LOGIN_COOKIE}=${token}; HttpOnly; Secure; SameSite=Strict; Path=/login; Max-Age=3600`);
    sendPage(res, status, loginPage({ ...view, token }));
  }

  async function signIn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const address = clientAddress(req);
    const form = await readForm(req);
    const next = safeNext(form.get('next'));
    const username = (form.get('username') ?? '').trim().slice(0, 200);
    // Counted before the password is checked, in the same synchronous step as the check
    // (no await between): parallel attempts cannot all slip under the limit.
    const admission = limiter.admit(address);
    if (!admission.admitted) {
      res.setHeader('retry-after', String(admission.retryAfterSeconds));
      deps.logger.warn({ remote: address }, 'portal: sign-in refused, rate limited');
      return renderLogin(res, 429, { next, username, error: `Too many failed sign-ins from this address. Try again in ${admission.retryAfterSeconds} s.` });
    }
    const { slot } = admission;
    const expected = readCookie(req.headers.cookie, LOGIN_COOKIE);
    const presented = form.get(CSRF_FIELD);
    if (!expected || !presented || expected !== presented) {
      slot.withdrawn();
      return renderLogin(res, 403, { next, username, error: 'The sign-in form had expired or did not come from this portal. Please sign in again.' });
    }
    let user: Awaited<ReturnType<typeof checkCredentials>>;
    try {
      user = await checkCredentials(deps.store, username, form.get('password') ?? '');
    } catch (err) {
      slot.withdrawn();
      if (!(err instanceof HashingBusyError)) throw err;
      res.setHeader('retry-after', String(err.retryAfterSeconds));
      deps.logger.warn({ remote: address }, 'portal: sign-in refused, password checks busy');
      return renderLogin(res, 429, { next, username, error: `The server is checking too many sign-ins at once. Try again in ${err.retryAfterSeconds} s.` });
    }
    if (user?.disabledAt) {
      // The password was right, so saying why is no help to a guesser.
      slot.withdrawn();
      deps.logger.warn({ remote: address, user: user.username }, 'portal: sign-in refused, user disabled');
      return renderLogin(res, 403, { next, username, error: 'This account is disabled. Ask a Reef administrator to enable it.' });
    }
    if (!user) {
      slot.failed();
      deps.logger.warn({ remote: address }, 'portal: sign-in refused, wrong username or password');
      // The username as typed, with no id: whether such a user exists is not the log's to say.
      await audit.record({ actor: { kind: 'user', id: null, name: username }, kind: 'user.sign-in-failed', address });
      res.setHeader(WWW_AUTHENTICATE, SESSION_CHALLENGE);
      return renderLogin(res, 401, { next, username, error: html`Sign-in failed: the username or password is not right.` });
    }
    slot.succeeded();
    const { id } = await startSession(deps.store, user, { ttlMs });
    deps.logger.info({ user: user.username, remote: address }, 'portal: signed in');
    await audit.record({ actor: userActor(user), kind: 'user.signed-in', address });
    await deps.onSignedIn?.(user).catch((err: unknown) => deps.logger.warn({ err, user: user.username }, 'portal: the sign-in hook failed'));
    redirect(res, next, [sessionCookie(id, ttlMs), `${LOGIN_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/login; Max-Age=0`]);
  }

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      if (err instanceof ReefError && err.code === 'REEF_NOT_FOUND') {
        sendPage(res, 404, errorPage(404, 'Not found', err.message));
      } else if (err instanceof ReefError && (err.code === 'REEF_TOO_LARGE' || err.code === 'REEF_UNSUPPORTED_MEDIA_TYPE')) {
        sendPage(res, httpStatusOf(err.code) ?? 400, errorPage(400, 'Bad request', err.message));
      } else {
        deps.logger.error({ err, path: (req.url ?? '').split('?')[0] }, 'portal: unexpected error');
        sendPage(res, 500, errorPage(500, 'Something went wrong', 'The server failed to show this page; the cause is in the server log.'));
      }
      drainRequest(req);
    });
  };
}


function methodNotAllowed(res: ServerResponse, allow: string): void {
  res.setHeader('allow', allow);
  sendPage(res, 405, errorPage(405, 'Method not allowed', `This page accepts ${allow}.`));
}

/** Only a path on this site: never `//host` or `/\host`, which browsers treat as another origin. */
export function safeNext(value: string | null | undefined): string {
  if (!value || value.length > 2000 || !value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return '/';
  if (/[\u0000-\u001f\u007f]/.test(value) || value.startsWith('/login') || value.startsWith('/logout')) return '/';
  return value;
}

/** An application/x-www-form-urlencoded body of at most 16 KiB. */
export async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new ReefError('REEF_UNSUPPORTED_MEDIA_TYPE', `This form takes application/x-www-form-urlencoded, not "${type || 'nothing'}".`);
  }
  if (Number(req.headers['content-length'] ?? 0) > MAX_FORM_BYTES) throw new ReefError('REEF_TOO_LARGE', `The form is larger than ${MAX_FORM_BYTES} bytes.`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new ReefError('REEF_TOO_LARGE', `The form is larger than ${MAX_FORM_BYTES} bytes.`);
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

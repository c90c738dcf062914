import type { ServerResponse } from 'node:http';
import type { Permission, Role } from '../auth/roles.js';
import { CSRF_FIELD } from '../auth/sessions.js';
import { html, toHtml, type HtmlValue, type SafeHtml } from './html.js';

/**
 * The frame every page shares, and the headers every portal response carries. Scripts
 * and styles come only from /static (the CSP allows nothing inline), and the CSRF token
 * travels in a meta tag the page scripts read.
 */

export const PORTAL_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

export const PORTAL_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': PORTAL_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

export function setPortalHeaders(res: ServerResponse): void {
  for (const [name, value] of Object.entries(PORTAL_HEADERS)) res.setHeader(name, value);
}

export interface SignedIn {
  username: string;
  role: Role;
  csrfToken: string;
  /** Whether the user may (auth/roles.ts): the pages offer only what they may do. */
  can(permission: Permission): boolean;
}

export type NavKey = 'dashboard' | 'tasks' | 'new-task' | 'add-machine' | 'nodes' | 'apikeys' | 'users' | 'audit' | 'account' | 'downloads' | 'none';

/** The menu; an entry shows only to users with its permission (the page refuses the others too). */
const NAV: readonly { key: NavKey; href: string; label: string; permission?: Permission }[] = [
  { key: 'dashboard', href: '/', label: 'Dashboard' },
  { key: 'tasks', href: '/tasks', label: 'Tasks', permission: 'tasks:read' },
  { key: 'new-task', href: '/tasks/new', label: 'New task', permission: 'tasks:write' },
  { key: 'add-machine', href: '/add-machine', label: 'Add machine', permission: 'tokens:manage' },
  { key: 'nodes', href: '/nodes', label: 'Server nodes', permission: 'nodes:read' },
  { key: 'apikeys', href: '/apikeys', label: 'API keys', permission: 'apikeys:manage' },
  { key: 'users', href: '/users', label: 'Users', permission: 'users:manage' },
  { key: 'audit', href: '/audit', label: 'Audit log', permission: 'audit:read' },
  { key: 'account', href: '/account', label: 'Account' },
  { key: 'downloads', href: '/downloads/', label: 'Downloads' },
];

export interface PageOptions {
  title: string;
  /** Names the page for its script (`body[data-page]`). */
  page: string;
  nav?: NavKey;
  user?: SignedIn;
  /** Extra data attributes on <body> for the page script, already as name -> value. */
  data?: Record<string, string>;
  /** Page scripts under /static, loaded as modules after common.js. */
  scripts?: string[];
  body: HtmlValue;
}

export function layout(options: PageOptions): SafeHtml {
  const { user } = options;
  const data = Object.entries(options.data ?? {}).map(([name, value]) => html` data-${name}="${value}"`);
  const nav = user
    ? html`<nav class="nav" aria-label="Main">
        <ul>${NAV.filter((item) => !item.permission || user.can(item.permission)).map((item) => html`<li><a href="${item.href}"${item.key === options.nav ? html` aria-current="page"` : ''}>${item.label}</a></li>`)}</ul>
        <form class="signout" method="post" action="/logout">
          <input type="hidden" name="${CSRF_FIELD}" value="${user.csrfToken}">
          <span class="who">Signed in as <strong>${user.username}</strong> (${user.role})</span>
          <button type="submit" class="link-button">Sign out</button>
        </form>
      </nav>`
    : '';
  const scripts = ['common.js', ...(options.scripts ?? [])];
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${user ? html`<meta name="reef-csrf" content="${user.csrfToken}">` : ''}
<title>${options.title} · Reef</title>
<link rel="icon" href="/static/logo.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/portal.css">
${scripts.map((s) => html`<script type="module" src="/static/${s}"></script>`)}
</head>
<body data-page="${options.page}"${data}>
<header class="top">
  <a class="brand" href="/"><img src="/static/logo.svg" alt="" width="28" height="28"> Reef</a>
  ${nav}
</header>
<main id="main">
${options.body}
</main>
</body>
</html>
`;
}

export function sendPage(res: ServerResponse, status: number, page: SafeHtml): void {
  const body = Buffer.from(toHtml(page), 'utf8');
  res.statusCode = status;
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.setHeader('content-length', body.length);
  res.end(body);
}

export function redirect(res: ServerResponse, location: string, cookies: string[] = []): void {
  res.statusCode = 303;
  if (cookies.length) res.setHeader('set-cookie', cookies);
  res.setHeader('location', location);
  res.setHeader('content-length', 0);
  res.end();
}

/** A message box; role=alert for problems, role=status for news. */
export function notice(kind: 'error' | 'info', text: HtmlValue): SafeHtml {
  return html`<div class="notice notice-${kind}" role="${kind === 'error' ? 'alert' : 'status'}">${kind === 'error' ? html`<span aria-hidden="true">✖ </span>` : html`<span aria-hidden="true">ℹ </span>`}${text}</div>`;
}

import { html } from '../html.js';
import { layout, type SignedIn } from '../layout.js';

export function errorPage(status: number, title: string, message: string, user?: SignedIn) {
  return layout({
    title,
    page: 'error',
    nav: 'none',
    user,
    body: html`<h1>${title}</h1><div class="notice notice-error" role="alert"><span aria-hidden="true">✖ </span>${message}</div><p><a href="/">Back to the dashboard</a></p><p class="muted small">HTTP ${status}</p>`,
  });
}

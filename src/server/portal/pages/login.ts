import { html, type HtmlValue } from '../html.js';
import { layout, notice } from '../layout.js';

export interface LoginView {
  /** The pre-sign-in CSRF token, also in the reef_login cookie. */
  token: string;
  next: string;
  username?: string;
  error?: HtmlValue;
  info?: HtmlValue;
}

export function loginPage(view: LoginView) {
  return layout({
    title: 'Sign in',
    page: 'login',
    body: html`
      <div class="signin">
        <h1>Sign in to Reef</h1>
        ${view.error ? notice('error', view.error) : ''}
        ${view.info ? notice('info', view.info) : ''}
        <form method="post" action="/login" class="form">
          <input type="hidden" name="csrf" value="${view.token}">
          <input type="hidden" name="next" value="${view.next}">
          <label>Username <input type="text" name="username" autocomplete="username" required autofocus value="${view.username ?? ''}"></label>
          <label>Password <input type="password" name="password" autocomplete="current-password" required></label>
          <div class="actions"><button type="submit" class="button primary">Sign in</button></div>
        </form>
        <p class="muted small">The first run of <code>reef server run</code> prints the <code>admin</code> password once.</p>
      </div>`,
  });
}

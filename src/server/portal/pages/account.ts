import { describeScope, isScoped } from '../../../api/roles.js';
import { MIN_PASSWORD_LENGTH } from '../../auth/users.js';
import { ROLE_SUMMARIES } from '../../auth/roles.js';
import type { PageContext } from '../context.js';
import { html } from '../html.js';
import { layout, sendPage } from '../layout.js';
import { signedIn } from './common.js';

/** The signed-in user's own account: role, scope, and changing the password (account.js). */
export async function accountPage(ctx: PageContext): Promise<void> {
  const { actor } = ctx;
  const body = html`
    <h1>Your account</h1>
    <dl class="facts">
      <div class="row"><dt>Username</dt><dd>${actor.name}</dd></div>
      <div class="row"><dt>Role</dt><dd><span class="tag">${actor.role}</span> <span class="muted small">may ${ROLE_SUMMARIES[actor.role]}</span></dd></div>
      <div class="row"><dt>Scope</dt><dd>${isScoped(actor.scope) ? describeScope(actor.scope) : 'the whole server'}</dd></div>
    </dl>
    <h2>Change your password</h2>
    <form id="change-password" class="form">
      <input type="text" name="username" autocomplete="username" value="${actor.name}" hidden>
      <label>Current password <input type="password" name="currentPassword" autocomplete="current-password" required></label>
      <label>New password <span class="muted small">(at least ${MIN_PASSWORD_LENGTH} characters)</span>
        <input type="password" name="newPassword" autocomplete="new-password" required minlength="${MIN_PASSWORD_LENGTH}" maxlength="1024"></label>
      <div id="password-changed" class="notice notice-info" role="status" hidden>Your password is changed. Your other sessions are signed out.</div>
      <div id="action-error" class="notice notice-error" role="alert" hidden></div>
      <div class="actions"><button type="submit" class="button primary">Change password</button></div>
    </form>`;
  sendPage(ctx.res, 200, layout({ title: 'Your account', page: 'account', nav: 'account', user: signedIn(ctx), scripts: ['account.js'], body }));
}

import type { PageContext } from '../context.js';
import { badge, time } from '../format.js';
import { html } from '../html.js';
import { layout, sendPage } from '../layout.js';
import { accessCells, accessFields } from './access.js';
import { signedIn } from './common.js';

/** Portal users (admins only): create with a role and scope, reset a password, disable, enable (users.js). */
export async function usersPage(ctx: PageContext): Promise<void> {
  const { store } = ctx.deps;
  const [users, environments, pools] = await Promise.all([store.listUsers(), store.listEnvironments(), store.listWorkerPools()]);
  const body = html`
    <h1>Users</h1>
    <p>People who sign in to this portal. A new user's password, and a reset one, is shown once: pass it on, and they change it on their account page.</p>
    <form id="create-user" class="form">
      <label>Username <input type="text" name="username" required maxlength="200" autocomplete="off"></label>
      ${accessFields(environments, pools)}
      <div class="actions"><button type="submit" class="button primary">Create user</button></div>
    </form>
    <div id="new-password" class="notice notice-info" role="status" hidden>
      <p>The password of <strong id="new-password-user"></strong>. Copy it now: it is shown only this once.</p>
      <p><code id="new-password-value" class="secret"></code></p>
    </div>
    <div id="action-error" class="notice notice-error" role="alert" hidden></div>
    <table class="table users">
      <thead><tr><th scope="col">Username</th><th scope="col">Role</th><th scope="col">Scope</th><th scope="col">Created</th><th scope="col">State</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody id="users">${users.map((u) => html`<tr data-user-id="${u.id}" data-username="${u.username}">
        <th scope="row" data-label="Username">${u.username}${u.id === ctx.session.userId ? html` <span class="tag">you</span>` : ''}</th>
        ${accessCells(u)}
        <td data-label="Created">${time(u.createdAt)}</td>
        <td data-label="State" data-field="state">${badge(u.disabledAt ? 'disabled' : 'active')}</td>
        <td data-label="Actions">
          <button type="button" class="button small reset-password">Reset password</button>
          ${u.id === ctx.session.userId
            ? ''
            : html`<button type="button" class="button small ${u.disabledAt ? 'enable' : 'danger disable'}">${u.disabledAt ? 'Enable' : 'Disable'}</button>`}
        </td>
      </tr>`)}</tbody>
    </table>
  `;
  sendPage(ctx.res, 200, layout({ title: 'Users', page: 'users', nav: 'users', user: signedIn(ctx), scripts: ['users.js'], body }));
}

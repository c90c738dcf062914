import { listApiKeys } from '../../auth/apikeys.js';
import type { PageContext } from '../context.js';
import { badge, time } from '../format.js';
import { html } from '../html.js';
import { layout, sendPage } from '../layout.js';
import { accessCells, accessFields } from './access.js';
import { signedIn } from './common.js';

/** API keys: list, create (apikeys.js shows the key once), revoke. */
export async function apiKeysPage(ctx: PageContext): Promise<void> {
  const keys = await listApiKeys(ctx.deps.store);
  const [environments, pools] = await Promise.all([ctx.deps.store.listEnvironments(), ctx.deps.store.listWorkerPools()]);
  const body = html`
    <h1>API keys</h1>
    <p>API keys let scripts, the <code>reef</code> command line and <code>tentacle register-with</code> use the REST API. Only a hash of each key is stored.</p>
    <p>Give each key the least it needs: <code>registrar</code> for installing Tentacles, <code>operator</code> for pipelines, limited to their environments.</p>
    <form id="create-key" class="form">
      <label>Name for a new key <input type="text" name="name" required maxlength="200" autocomplete="off" placeholder="ci-pipeline"></label>
      ${accessFields(environments, pools)}
      <div class="actions"><button type="submit" class="button primary">Create key</button></div>
    </form>
    <div id="new-key" class="notice notice-info" role="status" hidden>
      <p>New key <strong id="new-key-name"></strong>. Copy it now: it is shown only this once.</p>
      <p><code id="new-key-value" class="secret"></code></p>
    </div>
    <div id="action-error" class="notice notice-error" role="alert" hidden></div>
    <table class="table apikeys">
      <thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Scope</th><th scope="col">Key starts</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">State</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody id="keys">${keys.map((k) => html`<tr data-key-id="${k.id}">
        <th scope="row" data-label="Name">${k.name}</th>
        ${accessCells(k)}
        <td data-label="Key starts"><code>API-${k.prefix}…</code></td>
        <td data-label="Created">${time(k.createdAt)}</td>
        <td data-label="Last used">${time(k.lastUsedAt)}</td>
        <td data-label="State" data-field="state">${badge(k.revokedAt ? 'revoked' : 'active')}</td>
        <td data-label="Actions">${k.revokedAt ? '' : html`<button type="button" class="button danger small revoke" data-key-id="${k.id}" data-key-name="${k.name}">Revoke</button>`}</td>
      </tr>`)}</tbody>
    </table>
  `;
  sendPage(ctx.res, 200, layout({ title: 'API keys', page: 'apikeys', nav: 'apikeys', user: signedIn(ctx), scripts: ['apikeys.js'], body }));
}

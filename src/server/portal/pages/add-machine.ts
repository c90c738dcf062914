import { INSTALL_CARRIERS, type InstallCarrier } from '../../../api/contract.js';
import type { PageContext } from '../context.js';
import { html } from '../html.js';
import { layout, sendPage } from '../layout.js';
import { signedIn } from './common.js';

const CARRIER_LABELS: Record<InstallCarrier, string> = {
  'comms-port': 'The comms port (10943 unless the server says otherwise)',
  https: 'The HTTPS port, routed to comms by SNI (443 where the server listens there)',
  websocket: 'A WebSocket on the HTTPS port',
};

const LIFETIMES: readonly [string, number][] = [
  ['1 hour', 3600],
  ['1 day', 86_400],
  ['7 days', 7 * 86_400],
  ['30 days', 30 * 86_400],
];

/**
 * Add machine: asks for the kind, scope and carrier, then (add-machine.js) makes a join
 * token with an install command through POST /api/tokens and shows the line to paste on
 * the machine. The line is made on the server (install/tentacle-install.ts), the same one
 * `reef tokens create --print-install` prints.
 */
export async function addMachinePage(ctx: PageContext): Promise<void> {
  const [environments, pools] = await Promise.all([ctx.deps.store.listEnvironments(), ctx.deps.store.listWorkerPools()]);
  const body = html`
    <h1>Add machine</h1>
    <p>Makes a join token and one command line. Run the line as root on a Linux machine: it downloads the Tentacle from this server (checking the server's public key, so nothing else can answer), installs and starts it as a service, and registers it with the token. The token registers machines into the scope below only, and does nothing else; running the line twice is harmless.</p>
    <form id="add-machine" class="form" novalidate>
      <fieldset>
        <legend>Kind</legend>
        <div class="choices">
          <label class="choice"><input type="radio" name="kind" value="target" checked> Deployment target</label>
          <label class="choice"><input type="radio" name="kind" value="worker"> Worker</label>
        </div>
        <div class="kind-part" data-kind="target">
          <label>Environment
            <input type="text" name="environment" list="environment-names" autocomplete="off" maxlength="200" placeholder="Production">
          </label>
          <datalist id="environment-names">${environments.map((e) => html`<option value="${e.name}"></option>`)}</datalist>
          <label>Role
            <input type="text" name="role" autocomplete="off" maxlength="200" placeholder="web">
          </label>
        </div>
        <div class="kind-part" data-kind="worker" hidden>
          <label>Worker pool
            <input type="text" name="workerPool" list="pool-names" autocomplete="off" maxlength="200" placeholder="Default Worker Pool">
          </label>
          <datalist id="pool-names">${pools.map((p) => html`<option value="${p.name}"></option>`)}</datalist>
        </div>
      </fieldset>
      <fieldset>
        <legend>Connection</legend>
        <label>How the Tentacle reaches the server
          <select name="carrier">${INSTALL_CARRIERS.map((c) => html`<option value="${c}">${CARRIER_LABELS[c]}</option>`)}</select>
        </label>
        <label>Comms address <span class="muted small">(optional: https://… or wss://… when not this server's own)</span>
          <input type="url" name="commsAddress" autocomplete="off" maxlength="500">
        </label>
        <label>HTTP proxy <span class="muted small">(optional: http://[user:password@]host:port)</span>
          <input type="url" name="proxy" autocomplete="off" maxlength="500">
        </label>
      </fieldset>
      <fieldset>
        <legend>Token</legend>
        <label>Machines that may register with it
          <input type="number" name="uses" min="1" max="10000" step="1" value="1" inputmode="numeric">
        </label>
        <label>Valid for
          <select name="expiresInSeconds">${LIFETIMES.map(([label, seconds]) => html`<option value="${String(seconds)}">${label}</option>`)}</select>
        </label>
      </fieldset>
      <div id="form-error" class="notice notice-error" role="alert" hidden></div>
      <div class="actions"><button type="submit" class="button primary">Make the install command</button></div>
    </form>
    <section id="install" hidden aria-labelledby="install-heading">
      <h2 id="install-heading">Run this as root on the machine</h2>
      <p>It holds a join token (<span id="install-token-id"></span>, <span id="install-token-scope"></span>, until <span id="install-token-expires"></span>), shown only this once.</p>
      <div class="command">
        <pre><code id="install-command"></code></pre>
        <button type="button" class="button small copy" data-copy="install-command" hidden>Copy</button>
        <span class="muted copy-status" role="status"></span>
      </div>
    </section>
  `;
  sendPage(ctx.res, 200, layout({ title: 'Add machine', page: 'add-machine', nav: 'add-machine', user: signedIn(ctx), scripts: ['add-machine.js'], body }));
}

import type { PageContext } from '../context.js';
import { html } from '../html.js';
import { layout, sendPage } from '../layout.js';
import { signedIn } from './common.js';

/** Server nodes: for now the node serving this page (GET /api's ServerInfo plus its comms registry). */
export async function nodesPage(ctx: PageContext): Promise<void> {
  const { info, comms } = ctx.deps;
  const connections = comms.links.all();
  const tentacles = new Set(connections.map((c) => c.peer.thumbprint)).size;
  const body = html`
    <h1>Server nodes</h1>
    <table class="table nodes">
      <thead><tr><th scope="col">Node</th><th scope="col">Version</th><th scope="col">Portal port</th><th scope="col">Comms port</th><th scope="col">Thumbprint</th><th scope="col">Connected Tentacles</th></tr></thead>
      <tbody><tr>
        <th scope="row" data-label="Node">${info.nodeName} <span class="tag">this node</span></th>
        <td data-label="Version">${info.version}</td>
        <td data-label="Portal port">${ctx.req.socket.localPort ?? ''}</td>
        <td data-label="Comms port">${info.commsPort}</td>
        <td data-label="Thumbprint"><code class="thumbprint">${info.commsThumbprint}</code></td>
        <td data-label="Connected Tentacles" id="connected-count">${tentacles} <span class="muted small">(${connections.length} connection${connections.length === 1 ? '' : 's'})</span></td>
      </tr></tbody>
    </table>
    <p class="muted">Tentacles trust this thumbprint. Nodes that share a PostgreSQL store will be listed here too.</p>
  `;
  sendPage(ctx.res, 200, layout({ title: 'Server nodes', page: 'nodes', nav: 'nodes', user: signedIn(ctx), body }));
}

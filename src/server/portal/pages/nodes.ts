import type { NodeView } from '../../../api/contract.js';
import type { PageContext } from '../context.js';
import { badge, time } from '../format.js';
import { html } from '../html.js';
import { layout, sendPage } from '../layout.js';
import { signedIn } from './common.js';

/** Server nodes sharing the store: health, ports, connected Tentacles, work in hand. */
export async function nodesPage(ctx: PageContext): Promise<void> {
  const { info } = ctx.deps;
  const nodes = await ctx.deps.nodes();
  const body = html`
    <h1>Server nodes</h1>
    <p>Tentacles trust the certificate <code class="thumbprint">${info.commsThumbprint}</code>${nodes.length > 1 ? ', which every node presents' : ''}.</p>
    <table class="table nodes">
      <thead><tr><th scope="col">Node</th><th scope="col">Status</th><th scope="col">Connected Tentacles</th><th scope="col">Running work</th><th scope="col">Last heartbeat</th><th scope="col">Version</th><th scope="col">Host</th><th scope="col">Ports (portal / comms)</th></tr></thead>
      <tbody>${nodes.map(nodeRow)}</tbody>
    </table>
    <p class="muted">A node that stops beating for 15 s counts as down; the work it supervised moves to the others within 20 s.</p>
  `;
  sendPage(ctx.res, 200, layout({ title: 'Server nodes', page: 'nodes', nav: 'nodes', user: signedIn(ctx), body }));
}

function nodeRow(node: NodeView) {
  const status = node.alive ? 'online' : node.stopped ? 'stopped' : 'down';
  return html`<tr data-node="${node.name}">
    <th scope="row" data-label="Node">${node.name}${node.thisNode ? html` <span class="tag">this node</span>` : ''}</th>
    <td data-label="Status">${badge(status)}</td>
    <td data-label="Connected Tentacles" class="connected-count">${node.connectedTentacles}</td>
    <td data-label="Running work">${node.runningWork}</td>
    <td data-label="Last heartbeat">${time(node.heartbeatAt)}</td>
    <td data-label="Version">${node.version ?? ''}</td>
    <td data-label="Host">${node.host ?? ''}</td>
    <td data-label="Ports">${node.httpsPort ?? ''} / ${node.commsPort ?? ''}</td>
  </tr>`;
}

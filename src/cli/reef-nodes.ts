import type { Command } from 'commander';
import type { NodeView } from '../api/contract.js';
import { note, printJson, printLine, runAction } from './common.js';
import { cell, formatAge, formatTable } from './output.js';
import { addConnectionOptions, connect, itemsOf, type ConnectionOpts } from './reef-connection.js';

/** `reef nodes list`: GET /api/nodes -> { items: NodeView[] }. */
export function registerNodeCommands(program: Command): void {
  const nodes = program.command('nodes').description('the server nodes sharing this server\'s store');
  addConnectionOptions(
    nodes.command('list').description('list server nodes: status, connected tentacles, running work, last heartbeat, version, host, ports'),
  ).action(
    runAction(async (opts: ConnectionOpts) => {
      const items = itemsOf<NodeView>(await (await connect(opts)).json('GET', '/api/nodes'));
      if (opts.json) return printJson(items);
      if (!items.length) return note('No server node has joined this store yet.');
      printLine(nodeTable(items));
    }),
  );
}

export function nodeTable(items: NodeView[], now = Date.now()): string {
  return formatTable(
    ['NODE', 'STATUS', 'TENTACLES', 'WORK', 'HEARTBEAT', 'VERSION', 'HOST', 'PORTS'],
    items.map((n) => [
      n.thisNode ? `${n.name} (this node)` : n.name,
      n.alive ? 'online' : n.stopped ? 'stopped' : 'down',
      String(n.connectedTentacles),
      String(n.runningWork),
      formatAge(n.heartbeatAt, now),
      cell(n.version),
      cell(n.host),
      `${cell(n.httpsPort)}/${cell(n.commsPort)}`,
    ]),
  );
}

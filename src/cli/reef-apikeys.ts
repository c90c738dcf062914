import type { Command } from 'commander';
import type { ApiKeyView, CreatedApiKey } from '../api/contract.js';
import { absolutePath, note, printJson, printLine, runAction } from './common.js';
import { formatAge, formatTable } from './output.js';
import { accessBody, accessScope, addAccessOptions, scopeCell, type AccessOpts } from './reef-access.js';
import { addConnectionOptions, connect, itemsOf, segment, type ConnectionOpts } from './reef-connection.js';

/**
 * `reef apikey create --name NAME [--role R] [--environment E]... [--worker-pool P]...`:
 * over the REST API (POST /api/apikeys) by default, or with `--data DIR` directly in a
 * server's data directory (for bootstrapping, before any key exists; works whether the
 * server runs or not). `reef apikey list` and `reef apikey revoke ID` use the API.
 */
export function registerApiKeyCommands(program: Command): void {
  const apikey = program.command('apikey').description('API keys for the REST API and the reef admin commands');

  addConnectionOptions(
    addAccessOptions(
      apikey
        .command('create')
        .description('create an API key and print it (shown once; only its hash is stored)')
        .requiredOption('--name <name>', 'what the key is for, e.g. "ci" or "alice"'),
      'admin',
    )
      .option('--data <dir>', "create it offline in this server data directory instead of over the API (server stopped or not)")
      .option('--store <url>', 'with --data: the server\'s PostgreSQL store, when it uses one'),
  ).action(
    runAction(async (opts: ConnectionOpts & AccessOpts & { name: string; data?: string; store?: string }) => {
      let created: CreatedApiKey;
      if (opts.data !== undefined) {
        const { createApiKeyOffline } = await import('../server/runtime.js');
        created = await createApiKeyOffline(absolutePath(opts.data, '--data'), opts.name, opts.store, { role: opts.role, scope: accessScope(opts) });
      } else {
        created = await (await connect(opts)).json<CreatedApiKey>('POST', '/api/apikeys', { body: { name: opts.name, ...accessBody(opts) } });
      }
      if (opts.json) return printJson(created);
      note(`Created API key "${created.name}" (${created.id}), role ${created.role}, ${scopeCell(created.scope)}. It is shown only this once: store it now.`);
      printLine(created.key);
    }),
  );

  addConnectionOptions(apikey.command('list').description('list API keys: name, id, role, scope, when last used, revoked or not (never the keys)')).action(
    runAction(async (opts: ConnectionOpts) => {
      const items = itemsOf<ApiKeyView>(await (await connect(opts)).json('GET', '/api/apikeys'));
      if (opts.json) return printJson(items);
      if (!items.length) return note('No API keys.');
      printLine(
        formatTable(
          ['NAME', 'ID', 'ROLE', 'SCOPE', 'LAST USED', 'STATE'],
          items.map((k) => [k.name, k.id, k.role, scopeCell(k.scope), formatAge(k.lastUsedAt), k.revokedAt ? `revoked ${formatAge(k.revokedAt)}` : 'active']),
        ),
      );
    }),
  );

  addConnectionOptions(apikey.command('revoke').description('revoke an API key: it stops working at once').argument('<id>', 'the key id (reef apikey list)')).action(
    runAction(async (id: string, opts: ConnectionOpts) => {
      await (await connect(opts)).json('DELETE', `/api/apikeys/${segment(id)}`);
      if (opts.json) printJson({ revoked: id });
      else note(`Revoked API key ${id}.`);
    }),
  );
}

import type { Command } from 'commander';
import type { CreatedApiKey } from '../api/contract.js';
import { absolutePath, note, printJson, printLine, runAction } from './common.js';
import { addConnectionOptions, connect, type ConnectionOpts } from './reef-connection.js';

/**
 * `reef apikey create --name NAME`: over the REST API (POST /api/apikeys { name }) by
 * default, or with `--data DIR` directly in a server's data directory (for bootstrapping,
 * before any key exists; works whether the server runs or not).
 */
export function registerApiKeyCommands(program: Command): void {
  const apikey = program.command('apikey').description('API keys for the REST API and the reef admin commands');

  addConnectionOptions(
    apikey
      .command('create')
      .description('create an API key and print it (shown once; only its hash is stored)')
      .requiredOption('--name <name>', 'what the key is for, e.g. "ci" or "alice"')
      .option('--data <dir>', "create it offline in this server data directory instead of over the API (server stopped or not)")
      .option('--store <url>', 'with --data: the server\'s PostgreSQL store, when it uses one'),
  ).action(
    runAction(async (opts: ConnectionOpts & { name: string; data?: string; store?: string }) => {
      let created: CreatedApiKey;
      if (opts.data !== undefined) {
        const { createApiKeyOffline } = await import('../server/runtime.js');
        created = await createApiKeyOffline(absolutePath(opts.data, '--data'), opts.name, opts.store);
      } else {
        created = await (await connect(opts)).json<CreatedApiKey>('POST', '/api/apikeys', { body: { name: opts.name } });
      }
      if (opts.json) return printJson(created);
      note(`Created API key "${created.name}" (${created.id}). It is shown only this once: store it now.`);
      printLine(created.key);
    }),
  );
}

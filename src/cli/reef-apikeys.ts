import type { Command } from 'commander';
import type { CreatedApiKey } from '../api/contract.js';
import { ReefError } from '../errors.js';
import { absolutePath, note, printJson, printLine, runAction } from './common.js';
import { addConnectionOptions, connect, type ConnectionOpts } from './reef-connection.js';

/**
 * `reef apikey create --name NAME`: over the REST API (POST /api/apikeys { name }) by
 * default, or offline against a server's data directory with `--data DIR`.
 *
 * The offline implementation belongs to the server side (src/cli/reef-server.ts opens the
 * store), so this module only offers a hook: that module's registrar calls
 * `setOfflineApiKeyCreator(fn)` and must NOT add its own `apikey create` command (commander
 * would refuse a second `apikey`). Until the hook is set, `--data` fails with a clear message.
 */

export interface OfflineApiKeyRequest {
  /** Absolute path of the server's data directory. */
  dataDir: string;
  name: string;
}

export type OfflineApiKeyCreator = (request: OfflineApiKeyRequest) => Promise<CreatedApiKey>;

let offlineCreator: OfflineApiKeyCreator | undefined;

export function setOfflineApiKeyCreator(creator: OfflineApiKeyCreator | undefined): void {
  offlineCreator = creator;
}

export function registerApiKeyCommands(program: Command): void {
  const apikey = program.command('apikey').description('API keys for the REST API and the reef admin commands');

  addConnectionOptions(
    apikey
      .command('create')
      .description('create an API key and print it (shown once; only its hash is stored)')
      .requiredOption('--name <name>', 'what the key is for, e.g. "ci" or "alice"')
      .option('--data <dir>', "create it offline in this server data directory instead of over the API (server stopped or not)"),
  ).action(
    runAction(async (opts: ConnectionOpts & { name: string; data?: string }) => {
      let created: CreatedApiKey;
      if (opts.data !== undefined) {
        if (!offlineCreator) {
          throw new ReefError(
            'REEF_NOT_IMPLEMENTED',
            '"reef apikey create --data" is not available in this build; create the key over the API with --server and --api-key.',
          );
        }
        created = await offlineCreator({ dataDir: absolutePath(opts.data, '--data'), name: opts.name });
      } else {
        created = await connect(opts).json<CreatedApiKey>('POST', '/api/apikeys', { body: { name: opts.name } });
      }
      if (opts.json) return printJson(created);
      note(`Created API key "${created.name}" (${created.id}). It is shown only this once: store it now.`);
      printLine(created.key);
    }),
  );
}

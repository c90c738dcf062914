import { Option, type Command } from 'commander';
import type { CreatedJoinToken, CreateJoinTokenRequest, InstallCarrier, JoinTokenView } from '../api/contract.js';
import { INSTALL_CARRIERS } from '../api/install.js';
import { ReefError } from '../errors.js';
import { collect, note, printJson, printLine, runAction } from './common.js';
import { cell, formatTable, list } from './output.js';
import { addConnectionOptions, connect, itemsOf, segment, type ConnectionOpts } from './reef-connection.js';

/**
 * `reef tokens create | list | revoke`: join tokens, which register machines into a scope
 * and can do nothing else (docs/security.md). Routes: POST /api/tokens, GET /api/tokens,
 * DELETE /api/tokens/:id. `create` prints the token alone on stdout, or with
 * `--print-install` the line that installs a Tentacle and registers it with the token
 * (the server makes that line, the same one the portal's Add machine page shows).
 */

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `90s`, `30m`, `1h`, `7d` (or plain seconds) as seconds, from `min` to `max` seconds. */
export function parseDuration(value: string, option: string, min: number, max: number): number {
  const match = /^\s*(\d+)\s*([smhd]?)\s*$/i.exec(value);
  if (!match) throw new ReefError('REEF_INVALID_ARGUMENT', `${option} takes a duration such as 30m, 1h or 7d, not "${value}".`);
  const seconds = Number(match[1]) * UNITS[(match[2] || 's').toLowerCase()]!;
  if (seconds < min || seconds > max) throw new ReefError('REEF_INVALID_ARGUMENT', `${option} must be between ${formatSeconds(min)} and ${formatSeconds(max)}, not "${value}".`);
  return seconds;
}

function formatSeconds(seconds: number): string {
  const unit = (['d', 'h', 'm'] as const).find((u) => seconds >= UNITS[u]! && seconds % UNITS[u]! === 0);
  return unit ? `${seconds / UNITS[unit]!}${unit}` : `${seconds}s`;
}

/** A join token's lifetime (--expires). */
export function parseLifetime(value: string): number {
  return parseDuration(value, '--expires', 60, 30 * 86_400);
}

function parseUses(value: string): number {
  const uses = Number(value);
  if (!Number.isInteger(uses) || uses < 1 || uses > 10_000) throw new ReefError('REEF_INVALID_ARGUMENT', `--uses takes a whole number from 1 to 10000, not "${value}".`);
  return uses;
}

interface CreateOpts extends ConnectionOpts {
  environment?: string[];
  role?: string[];
  workerPool?: string[];
  uses: string;
  expires: string;
  printInstall?: boolean;
  carrier?: InstallCarrier;
  commsAddress?: string;
  proxy?: string;
  serverUrl?: string;
}

export function registerTokenCommands(program: Command): void {
  const tokens = program.command('tokens').description('join tokens: register machines into one scope, for a short time, and nothing else');

  addConnectionOptions(
    tokens
      .command('create')
      .description('create a join token and print it alone on stdout (shown once; only its hash is stored)')
      .option('--environment <name>', 'targets: an environment they may join (repeatable)', collect)
      .option('--role <name>', 'targets: a role they may have (repeatable)', collect)
      .option('--worker-pool <name>', 'workers: a pool they may join (repeatable), instead of --environment and --role', collect)
      .option('--uses <n>', 'how many machines may register with it', '1')
      .option('--expires <duration>', 'how long it works: 30m, 1h, 7d (at most 30d)', '1h')
      .option('--print-install', 'print the line that installs a Tentacle from the server and registers it with the token, instead of the token')
      .addOption(new Option('--carrier <carrier>', 'with --print-install: how the Tentacle polls').choices(INSTALL_CARRIERS).default('comms-port'))
      .option('--comms-address <url>', 'with --print-install: https://... (carrier https) or wss://... (carrier websocket) when not the server\'s own')
      .option('--proxy <url>', 'with --print-install: the HTTP proxy the machine goes through, http://[user:password@]host:port')
      .option('--server-url <url>', 'with --print-install: the https:// address machines reach the server by (default the one this command uses)'),
  ).action(
    runAction(async (opts: CreateOpts) => {
      const installOnly = [opts.commsAddress, opts.proxy, opts.serverUrl].some((v) => v !== undefined) || opts.carrier !== 'comms-port';
      if (installOnly && !opts.printInstall) throw new ReefError('REEF_INVALID_ARGUMENT', '--carrier, --comms-address, --proxy and --server-url go with --print-install.');
      const body: CreateJoinTokenRequest = {
        ...(opts.environment ? { environments: opts.environment } : {}),
        ...(opts.role ? { roles: opts.role } : {}),
        ...(opts.workerPool ? { workerPools: opts.workerPool } : {}),
        uses: parseUses(opts.uses),
        expiresInSeconds: parseLifetime(opts.expires),
        ...(opts.printInstall
          ? {
              install: {
                carrier: opts.carrier ?? 'comms-port',
                ...(opts.commsAddress !== undefined ? { commsAddress: opts.commsAddress } : {}),
                ...(opts.proxy !== undefined ? { proxy: opts.proxy } : {}),
                ...(opts.serverUrl !== undefined ? { serverUrl: opts.serverUrl } : {}),
              },
            }
          : {}),
      };
      const created = await (await connect(opts)).json<CreatedJoinToken>('POST', '/api/tokens', { body });
      if (opts.json) return printJson(created);
      note(`Created join token ${created.id} for ${scopeText(created)}: ${usesText(created)}, until ${created.expiresAt}. It is shown only this once.`);
      if (opts.printInstall) {
        note('Run this line as root on the Linux machine:');
        printLine(created.installCommand ?? '');
      } else {
        printLine(created.token);
      }
    }),
  );

  addConnectionOptions(tokens.command('list').description('list join tokens: scope, uses left, expiry, state and who made them')).action(
    runAction(async (opts: ConnectionOpts) => {
      const items = itemsOf<JoinTokenView>(await (await connect(opts)).json('GET', '/api/tokens'));
      if (opts.json) return printJson(items);
      if (!items.length) return note('No join tokens.');
      printLine(
        formatTable(
          ['ID', 'SCOPE', 'USES LEFT', 'EXPIRES', 'STATE', 'CREATED BY'],
          items.map((t) => [t.id, scopeText(t), `${t.usesLeft}/${t.uses}`, t.expiresAt, t.state, cell(t.createdBy)]),
        ),
      );
    }),
  );

  addConnectionOptions(tokens.command('revoke').description('revoke a join token: it stops working at once').argument('<id>', 'token id, as `reef tokens list` shows')).action(
    runAction(async (id: string, opts: ConnectionOpts) => {
      await (await connect(opts)).json('DELETE', `/api/tokens/${segment(id)}`);
      if (opts.json) printJson({ revoked: id });
      else note(`Revoked join token ${id}.`);
    }),
  );
}

function scopeText(t: Pick<JoinTokenView, 'kind' | 'environments' | 'roles' | 'workerPools'>): string {
  return t.kind === 'worker' ? `workers in ${list(t.workerPools)}` : `targets in ${list(t.environments)} as ${list(t.roles)}`;
}

function usesText(t: Pick<JoinTokenView, 'uses'>): string {
  return t.uses === 1 ? 'one registration' : `${t.uses} registrations`;
}

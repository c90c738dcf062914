import type { Command } from 'commander';
import type { UserView, UserWithPassword } from '../api/contract.js';
import { ReefError } from '../errors.js';
import { absolutePath, note, printJson, printLine, runAction } from './common.js';
import { formatAge, formatTable } from './output.js';
import { accessBody, addAccessOptions, scopeCell, type AccessOpts } from './reef-access.js';
import { addConnectionOptions, connect, itemsOf, segment, type ConnectionOpts } from './reef-connection.js';

/**
 * `reef user create|list|set-role|reset-password|disable|enable`: portal users, over the REST API
 * (an admin key). `reef user reset-password --data DIR` works offline, in the server's
 * store, for the admin who lost the only admin password. A password set here is printed
 * once (on stdout, alone, so a script can capture it), or read from stdin with
 * --password-stdin.
 */
export function registerUserCommands(program: Command): void {
  const user = program.command('user').description('portal users: who signs in to the web portal, with which role');

  addConnectionOptions(
    addAccessOptions(user.command('create').description('create a portal user and print its password once').requiredOption('--name <username>', 'the username'), 'viewer')
      .option('--password-stdin', 'read the password from stdin instead of generating one'),
  ).action(
    runAction(async (opts: ConnectionOpts & AccessOpts & { name: string; passwordStdin?: boolean }) => {
      const password = opts.passwordStdin ? await readPassword() : undefined;
      const made = await (await connect(opts)).json<UserWithPassword>('POST', '/api/users', { body: { username: opts.name, ...accessBody(opts), ...(password ? { password } : {}) } });
      report(made, `Created user "${made.user.username}", role ${made.user.role}, ${scopeCell(made.user.scope)}.`, opts.json, password !== undefined);
    }),
  );

  addConnectionOptions(user.command('list').description('list portal users: name, role, scope, created, disabled or not')).action(
    runAction(async (opts: ConnectionOpts) => {
      const items = itemsOf<UserView>(await (await connect(opts)).json('GET', '/api/users'));
      if (opts.json) return printJson(items);
      if (!items.length) return note('No users.');
      printLine(
        formatTable(
          ['USERNAME', 'ROLE', 'SCOPE', 'CREATED', 'STATE'],
          items.map((u) => [u.username, u.role, scopeCell(u.scope), formatAge(u.createdAt), u.disabledAt ? `disabled ${formatAge(u.disabledAt)}` : 'active']),
        ),
      );
    }),
  );

  addConnectionOptions(
    user
      .command('reset-password')
      .description("set a user's password (generated and printed once, or from stdin) and end their sessions")
      .requiredOption('--name <username>', 'the username')
      .option('--password-stdin', 'read the new password from stdin instead of generating one')
      .option('--data <dir>', "offline, in this server data directory (server stopped): for a lost admin password; also enables the user")
      .option('--store <url>', "with --data: the server's PostgreSQL store, when it uses one"),
  ).action(
    runAction(async (opts: ConnectionOpts & { name: string; passwordStdin?: boolean; data?: string; store?: string }) => {
      const password = opts.passwordStdin ? await readPassword() : undefined;
      let made: UserWithPassword;
      if (opts.data !== undefined) {
        const { resetPasswordOffline } = await import('../server/runtime.js');
        made = await resetPasswordOffline(absolutePath(opts.data, '--data'), opts.name, opts.store, password);
      } else {
        made = await (await connect(opts)).json<UserWithPassword>('POST', `/api/users/${segment(opts.name)}/password`, { body: password ? { password } : {} });
      }
      report(made, `New password for "${made.user.username}" (role ${made.user.role}); their sessions are ended.`, opts.json, password !== undefined);
    }),
  );

  addConnectionOptions(
    addAccessOptions(
      user
        .command('set-role')
        .description("change a user's role and scope (at once, their sessions too); the options replace both")
        .requiredOption('--name <username>', 'the username'),
    ),
  ).action(
    runAction(async (opts: ConnectionOpts & AccessOpts & { name: string }) => {
      const changed = await (await connect(opts)).json<UserView>('POST', `/api/users/${segment(opts.name)}/access`, { body: accessBody(opts) });
      if (opts.json) return printJson(changed);
      note(`User "${changed.username}" now has role ${changed.role}, ${scopeCell(changed.scope)}.`);
    }),
  );

  for (const action of ['disable', 'enable'] as const) {
    addConnectionOptions(
      user
        .command(action)
        .description(action === 'disable' ? 'disable a user: signed out at once, cannot sign in' : 'enable a disabled user')
        .requiredOption('--name <username>', 'the username'),
    ).action(
      runAction(async (opts: ConnectionOpts & { name: string }) => {
        const changed = await (await connect(opts)).json<UserView>('POST', `/api/users/${segment(opts.name)}/${action}`);
        if (opts.json) return printJson(changed);
        note(`User "${changed.username}" is ${changed.disabledAt ? 'disabled' : 'enabled'}.`);
      }),
    );
  }
}

/** The password is printed alone on stdout, once; a password read from stdin is not echoed back. */
function report(made: UserWithPassword, message: string, json: boolean | undefined, fromStdin: boolean): void {
  if (json) return printJson(fromStdin ? { user: made.user } : made);
  note(fromStdin ? message : `${message} The password is shown only this once:`);
  if (!fromStdin) printLine(made.password);
}

/** The first line of stdin (a trailing newline is not part of the password). */
async function readPassword(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const password = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  if (!password) throw new ReefError('REEF_INVALID_ARGUMENT', '--password-stdin read no password: pipe one line in.');
  return password;
}

import { Option, type Command } from 'commander';
import { describeScope, isScoped, ROLES, type Role, type Scope } from '../api/roles.js';
import { collect } from './common.js';

/**
 * The role and scope options shared by `reef apikey create` and `reef user create`:
 * `--role R`, repeatable `--environment E` and `--worker-pool P`.
 */
export interface AccessOpts {
  role: Role;
  environment?: string[];
  workerPool?: string[];
}

/** `defaultRole` undefined: --role must be given. */
export function addAccessOptions(command: Command, defaultRole?: Role): Command {
  const role = new Option('--role <role>', 'what it may do: admin (everything), operator (tasks; read machines and logs), viewer (read only), registrar (register and deregister machines)').choices(ROLES);
  return command
    .addOption(defaultRole === undefined ? role.makeOptionMandatory() : role.default(defaultRole))
    .option('--environment <name>', 'limit it to this environment (repeat for more; not for admin)', collect)
    .option('--worker-pool <name>', 'limit it to this worker pool (repeat for more; not for admin)', collect);
}

/** The body fields of the options. */
export function accessBody(opts: AccessOpts): { role: Role; environments?: string[]; workerPools?: string[] } {
  return { role: opts.role, ...(opts.environment ? { environments: opts.environment } : {}), ...(opts.workerPool ? { workerPools: opts.workerPool } : {}) };
}

export function accessScope(opts: AccessOpts): Scope {
  return { environments: opts.environment ?? [], workerPools: opts.workerPool ?? [] };
}

/** The scope column of a listing. */
export function scopeCell(scope: Scope): string {
  return isScoped(scope) ? describeScope(scope) : 'whole server';
}

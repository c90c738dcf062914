import type { Command } from 'commander';
import type { AuditEventView } from '../api/contract.js';
import { ReefError } from '../errors.js';
import { note, printJson, printLine, runAction } from './common.js';
import { cell, formatTable } from './output.js';
import { addConnectionOptions, connect, itemsOf, query, type ConnectionOpts } from './reef-connection.js';

interface AuditOpts extends ConnectionOpts {
  actor?: string;
  kind?: string;
  since?: string;
  until?: string;
  before?: string;
  limit?: string;
}

/** `reef audit`: GET /api/audit -> { items: AuditEventView[] }, newest first. */
export function registerAuditCommands(program: Command): void {
  addConnectionOptions(
    program
      .command('audit')
      .description('read the audit log: who changed what, when, from which address (newest first; administrators only)')
      .option('--actor <id-or-name>', "only this actor's events: an API key's or user's id or name")
      .option('--kind <kind>', 'only this kind (machine.registered) or family (machine)')
      .option('--since <time>', 'only events at or after this ISO-8601 time, or this long ago (30m, 12h, 7d)')
      .option('--until <time>', 'only events before this ISO-8601 time, or this long ago')
      .option('--before <id>', 'only events older than this id (the next page: the last id shown)')
      .option('--limit <n>', 'at most this many (default 100, at most 1000)'),
  ).action(
    runAction(async (opts: AuditOpts) => {
      const now = Date.now();
      const path = `/api/audit${query({
        actor: opts.actor,
        kind: opts.kind,
        since: opts.since === undefined ? undefined : timeArgument(opts.since, '--since', now),
        until: opts.until === undefined ? undefined : timeArgument(opts.until, '--until', now),
        before: opts.before,
        limit: opts.limit,
      })}`;
      const items = itemsOf<AuditEventView>(await (await connect(opts)).json('GET', path));
      if (opts.json) return printJson(items);
      if (!items.length) return note('No audit event matches.');
      printLine(auditTable(items));
      if (items.length === Number(opts.limit ?? 100)) note(`More may be older: add --before ${items[items.length - 1]!.id}.`);
    }),
  );
}

export function auditTable(items: AuditEventView[]): string {
  const party = (p: AuditEventView['actor'] | null) => (p ? `${p.kind}:${p.name ?? p.id ?? '?'}` : '-');
  return formatTable(
    ['ID', 'TIME', 'KIND', 'ACTOR', 'TARGET', 'ADDRESS', 'NODE'],
    items.map((e) => [String(e.id), e.at, e.kind, party(e.actor), party(e.target), cell(e.address), e.node]),
  );
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** An ISO-8601 time as given, or `30m`/`12h`/`7d` ago as one. */
export function timeArgument(value: string, option: string, now: number): string {
  const relative = /^(\d+)([smhd])$/.exec(value.trim());
  if (relative) return new Date(now - Number(relative[1]) * UNITS[relative[2]!]!).toISOString();
  if (Number.isNaN(Date.parse(value))) {
    throw new ReefError('REEF_INVALID_ARGUMENT', `${option} must be an ISO-8601 time (2026-12-01T09:00:00Z) or a time ago (30m, 12h, 7d), got "${value}".`);
  }
  return value;
}

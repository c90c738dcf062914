/**
 * The audit log's table: appended to and read, never changed (migration 007 makes UPDATE and
 * DELETE fail in both dialects). Which kinds and actors exist is src/server/audit's business;
 * the store checks only that they are well formed.
 */
import { clampLimit, invalid, toTimestamp } from './input.js';
import { fold, jsonOf, type JsonColumn } from './rows.js';
import { sql, where, type Database, type Sql } from './sql.js';
import type { AuditActor, AuditEvent, AuditTarget, Store } from './types.js';

type Audit = Pick<Store, 'appendAuditEvent' | 'listAuditEvents'>;

interface AuditRow {
  id: number | string;
  at: string;
  node: string;
  actor_kind: string;
  actor_id: string | null;
  actor_name: string | null;
  kind: string;
  target_kind: string | null;
  target_id: string | null;
  target_name: string | null;
  address: string | null;
  details: JsonColumn | null;
}

const KIND = /^[a-z][a-z-]*(\.[a-z][a-z-]*)+$/;
const WORD = /^[a-z][a-z-]*$/;
const MAX_TEXT = 200;
const MAX_DETAILS = 16 * 1024;

function text(what: string, value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') throw invalid(`${what} must be a string.`);
  // Names come from clients (a username typed at sign-in): bounded, never refused.
  return value.length > MAX_TEXT ? value.slice(0, MAX_TEXT) : value;
}

function word(what: string, value: unknown): string {
  if (typeof value !== 'string' || !WORD.test(value)) throw invalid(`${what} must be lowercase words joined by hyphens, got ${JSON.stringify(value)}.`);
  return value;
}

function checkActor(actor: AuditActor): AuditActor {
  return { kind: word('An audit actor kind', actor.kind), id: text('An audit actor id', actor.id), name: text('An audit actor name', actor.name) };
}

function checkTarget(target: AuditTarget | null | undefined): AuditTarget | null {
  if (!target) return null;
  return { kind: word('An audit target kind', target.kind), id: text('An audit target id', target.id), name: text('An audit target name', target.name) };
}

function toAuditEvent(r: AuditRow): AuditEvent {
  return {
    id: Number(r.id),
    at: r.at,
    node: r.node,
    actor: { kind: r.actor_kind, id: r.actor_id, name: r.actor_name },
    kind: r.kind,
    target: r.target_kind === null ? null : { kind: r.target_kind, id: r.target_id, name: r.target_name },
    address: r.address,
    details: jsonOf(r.details),
  };
}

export function audit(database: Database): Audit {
  return {
    appendAuditEvent: async (event) => {
      if (typeof event.kind !== 'string' || !KIND.test(event.kind)) throw invalid(`An audit event kind looks like "apikey.created", got ${JSON.stringify(event.kind)}.`);
      if (typeof event.node !== 'string' || event.node === '') throw invalid('An audit event needs the node that records it.');
      const actor = checkActor(event.actor);
      const target = checkTarget(event.target);
      const details = event.details ?? null;
      if (details !== null && JSON.stringify(details).length > MAX_DETAILS) throw invalid(`Audit event details are larger than ${MAX_DETAILS} characters of JSON.`);
      const d = database.dialect;
      // The store's clock (PostgreSQL's now()), so the events of a cluster's nodes sort as they happened.
      const row = await database.one<AuditRow>(sql`INSERT INTO audit_events
        (at, node, actor_kind, actor_id, actor_name, kind, target_kind, target_id, target_name, address, details)
        VALUES (${d.clock(0)}, ${text('node', event.node)}, ${actor.kind}, ${actor.id}, ${actor.name}, ${event.kind},
          ${target?.kind ?? null}, ${target?.id ?? null}, ${target?.name ?? null}, ${text('An address', event.address)}, ${d.json(details)})
        RETURNING *`);
      return toAuditEvent(row!);
    },

    listAuditEvents: async (filter = {}) => {
      const limit = clampLimit(filter.limit, 100, 1000);
      const conditions: Sql[] = [];
      if (filter.actor !== undefined) conditions.push(sql`(actor_id = ${filter.actor} OR lower(actor_name) = ${fold(filter.actor)})`);
      if (filter.kind !== undefined) conditions.push(sql`kind = ${filter.kind}`);
      if (filter.family !== undefined) {
        const prefix = `${filter.family}.`;
        conditions.push(sql`substr(kind, 1, ${prefix.length}) = ${prefix}`);
      }
      if (filter.since !== undefined) conditions.push(sql`at >= ${toTimestamp(filter.since)}`);
      if (filter.until !== undefined) conditions.push(sql`at < ${toTimestamp(filter.until)}`);
      if (filter.before !== undefined) {
        if (!Number.isSafeInteger(filter.before)) throw invalid(`before must be an audit event id, got ${filter.before}.`);
        conditions.push(sql`id < ${filter.before}`);
      }
      const rows = await database.all<AuditRow>(sql`SELECT * FROM audit_events ${where(conditions)} ORDER BY id DESC LIMIT ${limit}`);
      return rows.map(toAuditEvent);
    },
  };
}

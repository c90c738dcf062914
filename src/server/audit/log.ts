/**
 * The audit log: one call records who did what, to what, from where
 * (`audit.record({ actor, kind, target, details, address })`). Every server node writes to
 * the store it shares with the others, so a cluster has one log. Each event also goes to
 * the server's own log (message `audit`), which journald or a log shipper can forward.
 *
 * Recording happens after the change, before the answer: a client that got its answer can
 * rely on the event being stored. A store that fails then does not undo the change nor fail
 * the request; the event is written whole to the server log at error level instead.
 */
import type { Logger } from '../../logging.js';
import type { AuditEvent, AuditEventInput, AuditTarget, JsonObject, Store } from '../store/types.js';
import type { Actor } from './actor.js';
import { AUDIT_KINDS, type AuditKind } from './kinds.js';

export interface AuditRecord {
  actor: Actor;
  kind: AuditKind;
  /** What the event is about; its kind defaults to the one AUDIT_KINDS gives for `kind`. */
  target?: { kind?: string; id: string | null; name: string | null } | null;
  /** Never secrets: no keys, tokens, passwords or script bodies. */
  details?: JsonObject | null;
  /** The client's address (clientAddress(req): PROXY protocol aware); null when no connection made the change. */
  address?: string | null;
}

export interface AuditLogOptions {
  store: Store;
  /** This server node's name. */
  node: string;
  logger: Logger;
}

export class AuditLog {
  constructor(private readonly options: AuditLogOptions) {}

  /** Stores the event; resolves with it, or with null when the store failed (logged). Never rejects. */
  async record(event: AuditRecord): Promise<AuditEvent | null> {
    const { store, node, logger } = this.options;
    const input: AuditEventInput = { node, actor: event.actor, kind: event.kind, target: null, address: event.address ?? null, details: event.details ?? null };
    try {
      input.target = targetOf(event);
      const stored = await store.appendAuditEvent(input);
      logger.info({ audit: stored }, 'audit');
      return stored;
    } catch (err) {
      logger.error({ err, audit: input }, 'audit: could not store this audit event; it is recorded here only');
      return null;
    }
  }
}

function targetOf(event: AuditRecord): AuditTarget | null {
  if (!event.target) return null;
  const kind = event.target.kind ?? AUDIT_KINDS[event.kind].target;
  if (kind === null) throw new Error(`audit kind ${event.kind} has no target kind; name it in the record`);
  return { kind, id: event.target.id, name: event.target.name };
}

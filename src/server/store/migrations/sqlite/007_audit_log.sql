-- The audit log (src/server/audit/): who changed what, when, from where. Append-only: the
-- triggers below refuse UPDATE and DELETE, so the application cannot rewrite its own history
-- (docs/security.md says what that protects against and what it does not). The PostgreSQL
-- migration of the same number creates the same table (TEXT timestamps become timestamptz).

CREATE TABLE audit_events (
  -- AUTOINCREMENT: an id is never handed out twice, even if rows were ever removed by hand.
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  at           TEXT NOT NULL,
  -- The server node that recorded it (nodes of a cluster share this table).
  node         TEXT NOT NULL,
  -- user, api-key, join-token, machine or system (src/server/audit/actor.ts).
  actor_kind   TEXT NOT NULL,
  actor_id     TEXT,
  actor_name   TEXT,
  -- One of the catalogue in src/server/audit/kinds.ts, e.g. apikey.created.
  kind         TEXT NOT NULL,
  target_kind  TEXT,
  target_id    TEXT,
  target_name  TEXT,
  -- The client's address: the one a PROXY protocol header announced when there is one.
  address      TEXT,
  details      TEXT
);
CREATE INDEX audit_events_at ON audit_events (at, id);
CREATE INDEX audit_events_kind ON audit_events (kind, id);
CREATE INDEX audit_events_actor ON audit_events (actor_id, id);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
  SELECT RAISE(ABORT, 'audit_events is append-only: audit events cannot be changed');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
  SELECT RAISE(ABORT, 'audit_events is append-only: audit events cannot be deleted');
END;

-- The audit log (src/server/audit/): who changed what, when, from where; the same table as
-- migrations/sqlite/007_audit_log.sql (TEXT timestamps become timestamptz). Append-only:
-- a trigger refuses UPDATE and DELETE on every row and TRUNCATE on the table, for every
-- role that does not drop the trigger first (docs/security.md: what that protects against).

CREATE TABLE audit_events (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at           timestamptz NOT NULL,
  -- The server node that recorded it (nodes of a cluster share this table).
  node         text COLLATE "C" NOT NULL,
  -- user, api-key, join-token, machine or system (src/server/audit/actor.ts).
  actor_kind   text COLLATE "C" NOT NULL,
  actor_id     text COLLATE "C",
  actor_name   text COLLATE "C",
  -- One of the catalogue in src/server/audit/kinds.ts, e.g. apikey.created.
  kind         text COLLATE "C" NOT NULL,
  target_kind  text COLLATE "C",
  target_id    text COLLATE "C",
  target_name  text COLLATE "C",
  -- The client's address: the one a PROXY protocol header announced when there is one.
  address      text COLLATE "C",
  details      json
);
CREATE INDEX audit_events_at ON audit_events (at, id);
CREATE INDEX audit_events_kind ON audit_events (kind, id);
CREATE INDEX audit_events_actor ON audit_events (actor_id, id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only: audit events cannot be changed or deleted (%)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_events_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

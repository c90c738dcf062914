-- Join tokens: short-lived, scoped credentials that can register a machine and do nothing
-- else (src/server/auth/join-tokens.ts). Only the token's SHA-256 is stored, in the same
-- self-describing form as API key hashes. `scope` is the JSON of the machines the token may
-- register: {"kind","environments","roles","workerPools"}. The PostgreSQL migration of the
-- same number creates the same table (TEXT timestamps become timestamptz).
CREATE TABLE join_tokens (
  id            TEXT PRIMARY KEY,
  hash          TEXT NOT NULL UNIQUE,
  scope         TEXT NOT NULL,
  uses          INTEGER NOT NULL,
  -- Decremented in the same statement that checks it (consumeJoinToken): never below 0.
  uses_left     INTEGER NOT NULL CHECK (uses_left >= 0),
  created_by    TEXT NOT NULL,
  created_at    TEXT NOT NULL,
  expires_at    TEXT NOT NULL,
  last_used_at  TEXT,
  revoked_at    TEXT
);
CREATE INDEX join_tokens_expires ON join_tokens (expires_at);

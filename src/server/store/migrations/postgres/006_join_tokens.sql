-- Join tokens: the same table as migrations/sqlite/006_join_tokens.sql (TEXT timestamps
-- become timestamptz); see there and src/server/auth/join-tokens.ts.
CREATE TABLE join_tokens (
  id            text COLLATE "C" PRIMARY KEY,
  hash          text COLLATE "C" NOT NULL UNIQUE,
  scope         text NOT NULL,
  uses          integer NOT NULL,
  uses_left     integer NOT NULL CHECK (uses_left >= 0),
  created_by    text NOT NULL,
  created_at    timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL,
  last_used_at  timestamptz,
  revoked_at    timestamptz
);
CREATE INDEX join_tokens_expires ON join_tokens (expires_at);

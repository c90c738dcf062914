-- Portal sign-in: people (users) and their browser sessions; the same tables as
-- migrations/sqlite/002_portal_users.sql (TEXT timestamps become timestamptz). Usernames are
-- COLLATE "C" for the reason given in 001: case folds ASCII only, as on SQLite.

CREATE TABLE users (
  id             text COLLATE "C" PRIMARY KEY,
  username       text COLLATE "C" NOT NULL,
  -- Self-describing scrypt hash (`scrypt$N=..,r=..,p=..$salt$hash`); src/server/auth/passwords.ts.
  password_hash  text NOT NULL,
  created_at     timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_username_ci ON users (lower(username));

-- Only the SHA-256 of a session id is stored: a leaked database holds no usable cookie.
CREATE TABLE sessions (
  id_hash     text COLLATE "C" PRIMARY KEY,
  user_id     text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  csrf_token  text NOT NULL,
  created_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

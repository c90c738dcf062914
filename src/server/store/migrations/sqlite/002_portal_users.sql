-- Portal sign-in: people (users) and their browser sessions. The PostgreSQL migration of
-- the same number creates the same tables (TEXT timestamps become timestamptz).

CREATE TABLE users (
  id             TEXT PRIMARY KEY,
  username       TEXT NOT NULL,
  -- Self-describing scrypt hash (`scrypt$N=..,r=..,p=..$salt$hash`); src/server/auth/passwords.ts.
  password_hash  TEXT NOT NULL,
  created_at     TEXT NOT NULL
);
CREATE UNIQUE INDEX users_username_ci ON users (lower(username));

-- Only the SHA-256 of a session id is stored: a leaked database holds no usable cookie.
CREATE TABLE sessions (
  id_hash     TEXT PRIMARY KEY,
  user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  csrf_token  TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  expires_at  TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

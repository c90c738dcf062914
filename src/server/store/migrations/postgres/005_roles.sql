-- Roles and scopes (src/server/auth/roles.ts) on API keys and portal users, and disabled
-- users; the same columns as migrations/sqlite/005_roles.sql. Every key and user made
-- before this migration was an administrator, and stays one. A scope is a JSON array of
-- names kept as text (not jsonb), so both stores hand back the same string.
ALTER TABLE api_keys ADD COLUMN role text NOT NULL DEFAULT 'admin';
ALTER TABLE api_keys ADD COLUMN scope_environments text NOT NULL DEFAULT '[]';
ALTER TABLE api_keys ADD COLUMN scope_worker_pools text NOT NULL DEFAULT '[]';

ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'admin';
ALTER TABLE users ADD COLUMN scope_environments text NOT NULL DEFAULT '[]';
ALTER TABLE users ADD COLUMN scope_worker_pools text NOT NULL DEFAULT '[]';
-- Set while the user may not sign in; their sessions are deleted when it is set.
ALTER TABLE users ADD COLUMN disabled_at timestamptz;

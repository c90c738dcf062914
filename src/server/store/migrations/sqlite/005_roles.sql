-- Roles and scopes (src/server/auth/roles.ts) on API keys and portal users, and disabled
-- users. Every key and user made before this migration was an administrator, and stays one.
-- A scope is a JSON array of environment or worker pool names, '[]' meaning no limit there
-- (both '[]': the whole server). The PostgreSQL migration of the same number matches.
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE api_keys ADD COLUMN scope_environments TEXT NOT NULL DEFAULT '[]';
ALTER TABLE api_keys ADD COLUMN scope_worker_pools TEXT NOT NULL DEFAULT '[]';

ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE users ADD COLUMN scope_environments TEXT NOT NULL DEFAULT '[]';
ALTER TABLE users ADD COLUMN scope_worker_pools TEXT NOT NULL DEFAULT '[]';
-- Set while the user may not sign in; their sessions are deleted when it is set.
ALTER TABLE users ADD COLUMN disabled_at TEXT;

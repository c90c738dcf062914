/** API keys, portal users and their sessions. Hashing and expiry checks are src/server/auth's job. */
import { ReefError } from '../../errors.js';
import { newId } from './ids.js';
import { checkName, invalid, toTimestamp } from './input.js';
import { accessColumns, fold, toApiKey, toSession, toUser, type ApiKeyRow, type SessionRow, type UserRow } from './rows.js';
import { sql, type Database, type Db } from './sql.js';
import type { Access, Store } from './types.js';

type Auth = Pick<
  Store,
  'insertApiKey' | 'getApiKeyCredential' | 'listApiKeys' | 'revokeApiKey' | 'markApiKeyUsed' | 'insertUser' |
  'getUserCredential' | 'getUser' | 'listUsers' | 'countUsers' | 'setUserPassword' | 'setUserDisabled' | 'setUserAccess' | 'insertSession' | 'getSession' |
  'deleteSession' | 'deleteExpiredSessions'
>;

/** A disabled user's sessions are not found, even before they are deleted (another node may be mid-way). */
const session = (db: Db, idHash: string) =>
  db.one<SessionRow>(sql`SELECT s.*, u.username, u.role, u.scope_environments, u.scope_worker_pools
    FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ${idHash} AND u.disabled_at IS NULL`);

/** Everything made before roles existed was an administrator of the whole server. */
const ADMIN: Access = { role: 'admin', scope: { environments: [], workerPools: [] } };

export function auth(database: Database): Auth {
  return {
    insertApiKey: async (key) => {
      const name = checkName('API key name', key.name);
      return database.transaction(async (db) => {
        if (await db.one(sql`SELECT 1 FROM api_keys WHERE prefix = ${key.prefix}`)) {
          throw new ReefError('REEF_CONFLICT', `An API key with prefix ${key.prefix} exists already; generate a new key.`);
        }
        const a = accessColumns(key.access ?? ADMIN);
        const row = await db.one<ApiKeyRow>(sql`INSERT INTO api_keys (id, name, prefix, hash, salt, created_at, role, scope_environments, scope_worker_pools)
          VALUES (${newId('key')}, ${name}, ${key.prefix}, ${key.hash}, ${key.salt}, ${new Date().toISOString()},
            ${a.role}, ${a.scope_environments}, ${a.scope_worker_pools}) RETURNING *`);
        return toApiKey(row!);
      });
    },

    getApiKeyCredential: async (prefix) => {
      const row = await database.one<ApiKeyRow>(sql`SELECT * FROM api_keys WHERE prefix = ${prefix}`);
      return row ? { ...toApiKey(row), hash: row.hash, salt: row.salt } : null;
    },

    listApiKeys: async () => (await database.all<ApiKeyRow>(sql`SELECT * FROM api_keys ORDER BY created_at, id`)).map(toApiKey),

    revokeApiKey: async (id, at) => {
      const when = toTimestamp(at);
      return (await database.run(sql`UPDATE api_keys SET revoked_at = ${when} WHERE id = ${id} AND revoked_at IS NULL`)) > 0;
    },

    markApiKeyUsed: async (id, at) => {
      const when = toTimestamp(at);
      await database.run(sql`UPDATE api_keys SET last_used_at = ${when} WHERE id = ${id}`);
    },

    insertUser: async (user) => {
      const username = checkName('Username', user.username);
      if (typeof user.passwordHash !== 'string' || user.passwordHash === '') throw invalid('A user needs a password hash.');
      return database.transaction(async (db) => {
        if (await db.one(sql`SELECT 1 FROM users WHERE lower(username) = ${fold(username)}`)) {
          throw new ReefError('REEF_CONFLICT', `A user named "${username}" exists already; choose another name.`);
        }
        const a = accessColumns(user.access ?? ADMIN);
        const row = await db.one<UserRow>(sql`INSERT INTO users (id, username, password_hash, created_at, role, scope_environments, scope_worker_pools)
          VALUES (${newId('user')}, ${username}, ${user.passwordHash}, ${new Date().toISOString()},
            ${a.role}, ${a.scope_environments}, ${a.scope_worker_pools}) RETURNING *`);
        return toUser(row!);
      });
    },

    getUserCredential: async (username) => {
      const row = await database.one<UserRow>(sql`SELECT * FROM users WHERE lower(username) = ${fold(String(username))}`);
      return row ? { ...toUser(row), passwordHash: row.password_hash } : null;
    },

    getUser: async (idOrName) => {
      const key = String(idOrName);
      const row = await database.one<UserRow>(sql`SELECT * FROM users WHERE id = ${key} OR lower(username) = ${fold(key)} ORDER BY id = ${key} DESC LIMIT 1`);
      return row ? toUser(row) : null;
    },

    listUsers: async () => (await database.all<UserRow>(sql`SELECT * FROM users ORDER BY lower(username), id`)).map(toUser),

    setUserPassword: async (userId, passwordHash, keepSession) => {
      if (typeof passwordHash !== 'string' || passwordHash === '') throw invalid('A user needs a password hash.');
      return database.transaction(async (db) => {
        if ((await db.run(sql`UPDATE users SET password_hash = ${passwordHash} WHERE id = ${userId}`)) === 0) return false;
        // Whoever knew the old password may be signed in with it: those sessions end.
        await db.run(sql`DELETE FROM sessions WHERE user_id = ${userId} AND id_hash <> ${keepSession ?? ''}`);
        return true;
      });
    },

    setUserDisabled: async (userId, disabled, at) => {
      const when = disabled ? toTimestamp(at) : null;
      return database.transaction(async (db) => {
        const changed = disabled
          ? await db.run(sql`UPDATE users SET disabled_at = ${when} WHERE id = ${userId} AND disabled_at IS NULL`)
          : await db.run(sql`UPDATE users SET disabled_at = NULL WHERE id = ${userId} AND disabled_at IS NOT NULL`);
        if (changed > 0 && disabled) await db.run(sql`DELETE FROM sessions WHERE user_id = ${userId}`);
        return changed > 0;
      });
    },

    setUserAccess: async (userId, access) => {
      const a = accessColumns(access);
      return (await database.run(sql`UPDATE users SET role = ${a.role}, scope_environments = ${a.scope_environments},
        scope_worker_pools = ${a.scope_worker_pools} WHERE id = ${userId}`)) > 0;
    },

    countUsers: async () => (await database.one<{ count: number }>(sql`SELECT count(*) AS count FROM users`))!.count,

    insertSession: async (insert) => {
      const expiresAt = toTimestamp(insert.expiresAt);
      return database.transaction(async (db) => {
        // A user deleted meanwhile on another node fails the foreign key; the retry lands here.
        if (!(await db.one(sql`SELECT 1 FROM users WHERE id = ${insert.userId}`))) {
          throw new ReefError('REEF_NOT_FOUND', `No user has id "${insert.userId}".`);
        }
        await db.run(sql`INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at)
          VALUES (${insert.idHash}, ${insert.userId}, ${insert.csrfToken}, ${new Date().toISOString()}, ${expiresAt})`);
        return toSession((await session(db, insert.idHash))!);
      });
    },

    getSession: async (idHash) => {
      const row = await session(database, String(idHash));
      return row ? toSession(row) : null;
    },

    deleteSession: async (idHash) => (await database.run(sql`DELETE FROM sessions WHERE id_hash = ${String(idHash)}`)) > 0,

    deleteExpiredSessions: async (at) => database.run(sql`DELETE FROM sessions WHERE expires_at <= ${toTimestamp(at)}`),
  };
}

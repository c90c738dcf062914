/** Join tokens (see auth/join-tokens.ts): rows, and the one-statement use count. */
import { newId } from './ids.js';
import { toTimestamp } from './input.js';
import { sql, type Database } from './sql.js';
import type { JoinToken, JoinTokenScope, Store, Timestamp } from './types.js';

interface JoinTokenRow {
  id: string;
  hash: string;
  /** JSON text on both databases (the scope is only ever read whole). */
  scope: string;
  uses: number;
  uses_left: number;
  created_by: string;
  created_at: Timestamp;
  expires_at: Timestamp;
  last_used_at: Timestamp | null;
  revoked_at: Timestamp | null;
}

function toJoinToken(r: JoinTokenRow): JoinToken {
  return {
    id: r.id,
    scope: JSON.parse(r.scope) as JoinTokenScope,
    uses: Number(r.uses),
    usesLeft: Number(r.uses_left),
    createdBy: r.created_by,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
  };
}

type JoinTokens = Pick<Store, 'insertJoinToken' | 'getJoinTokenByHash' | 'getJoinToken' | 'listJoinTokens' | 'revokeJoinToken' | 'consumeJoinToken' | 'returnJoinTokenUse'>;

export function joinTokens(database: Database): JoinTokens {
  return {
    insertJoinToken: async (token) => {
      const { kind, environments, roles, workerPools } = token.scope;
      const scope = JSON.stringify({ kind, environments, roles, workerPools });
      const row = await database.one<JoinTokenRow>(sql`INSERT INTO join_tokens (id, hash, scope, uses, uses_left, created_by, created_at, expires_at)
        VALUES (${newId('tok')}, ${token.hash}, ${scope}, ${token.uses}, ${token.uses}, ${token.createdBy}, ${new Date().toISOString()},
          ${toTimestamp(token.expiresAt)}) RETURNING *`);
      return toJoinToken(row!);
    },

    getJoinTokenByHash: async (hash) => {
      const row = await database.one<JoinTokenRow>(sql`SELECT * FROM join_tokens WHERE hash = ${hash}`);
      return row ? toJoinToken(row) : null;
    },

    getJoinToken: async (id) => {
      const row = await database.one<JoinTokenRow>(sql`SELECT * FROM join_tokens WHERE id = ${id}`);
      return row ? toJoinToken(row) : null;
    },

    listJoinTokens: async () =>
      (await database.all<JoinTokenRow>(sql`SELECT * FROM join_tokens ORDER BY created_at DESC, id`)).map(toJoinToken),

    revokeJoinToken: async (id, at) =>
      (await database.run(sql`UPDATE join_tokens SET revoked_at = ${toTimestamp(at)} WHERE id = ${id} AND revoked_at IS NULL`)) > 0,

    // One UPDATE that both checks and decrements: the database serialises writers of a row,
    // so of two racing registrations only one sees uses_left > 0 (SQLite and PostgreSQL alike).
    consumeJoinToken: async (id, at) => {
      const now = toTimestamp(at);
      const row = await database.one<JoinTokenRow>(sql`UPDATE join_tokens SET uses_left = uses_left - 1, last_used_at = ${now}
        WHERE id = ${id} AND revoked_at IS NULL AND expires_at > ${now} AND uses_left > 0 RETURNING *`);
      return row ? toJoinToken(row) : null;
    },

    returnJoinTokenUse: async (id) => {
      await database.run(sql`UPDATE join_tokens SET uses_left = uses_left + 1 WHERE id = ${id} AND uses_left < uses`);
    },
  };
}

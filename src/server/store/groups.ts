/** Environments and worker pools: the named groups machines join. */
import { ReefError } from '../../errors.js';
import { newId } from './ids.js';
import { checkName } from './input.js';
import { fold, named, type NamedRow } from './rows.js';
import { raw, sql, type Database, type Db } from './sql.js';
import type { Store } from './types.js';

/** What differs between the two kinds of group. */
interface GroupKind {
  table: 'environments' | 'worker_pools';
  idPrefix: 'env' | 'pool';
  what: string;
  /** The link table from machines, and its column naming the group. */
  link: string;
  column: string;
  hint: string;
}

export const ENVIRONMENTS: GroupKind = { table: 'environments', idPrefix: 'env', what: 'Environment',
  link: 'machine_environments', column: 'environment_id', hint: 'Move or delete those machines first.' };

export const WORKER_POOLS: GroupKind = { table: 'worker_pools', idPrefix: 'pool', what: 'Worker pool',
  link: 'machine_worker_pools', column: 'pool_id', hint: 'Move or delete those workers first.' };

/** The group with this name (any case), created if missing. */
export async function ensureGroup(db: Db, kind: GroupKind, name: string): Promise<NamedRow> {
  // DO NOTHING waits for a concurrent insert of the same name (PostgreSQL); the SELECT (a new
  // statement, so a new snapshot) then sees whichever row won.
  await db.run(sql`INSERT INTO ${raw(kind.table)} (id, name, created_at) VALUES (${newId(kind.idPrefix)}, ${name}, ${new Date().toISOString()})
    ON CONFLICT (lower(name)) DO NOTHING`);
  return (await db.one<NamedRow>(sql`SELECT id, name, created_at FROM ${raw(kind.table)} WHERE lower(name) = ${fold(name)}`))!;
}

function getGroup(db: Db, kind: GroupKind, idOrName: string): Promise<NamedRow | undefined> {
  // An id match wins over a name that happens to look like an id.
  return db.one<NamedRow>(sql`SELECT id, name, created_at FROM ${raw(kind.table)}
    WHERE id = ${idOrName} OR lower(name) = ${fold(idOrName)} ORDER BY id = ${idOrName} DESC LIMIT 1`);
}

function deleteGroup(database: Database, kind: GroupKind, idOrName: string): Promise<boolean> {
  return database.transaction(async (db) => {
    const row = await getGroup(db, kind, idOrName);
    if (!row) return false;
    const users = (
      await db.all<{ name: string }>(sql`SELECT m.name FROM ${raw(kind.link)} l JOIN machines m ON m.id = l.machine_id
        WHERE l.${raw(kind.column)} = ${row.id} ORDER BY lower(m.name)`)
    ).map((r) => r.name);
    if (users.length > 0) {
      const shown = users.slice(0, 10).join(', ') + (users.length > 10 ? `, and ${users.length - 10} more` : '');
      throw new ReefError('REEF_IN_USE', `${kind.what} "${row.name}" still has ${users.length} machine(s): ${shown}. ${kind.hint}`);
    }
    // A machine joining meanwhile on another node fails the RESTRICT key; the retry reports it.
    await db.run(sql`DELETE FROM ${raw(kind.table)} WHERE id = ${row.id}`);
    return true;
  });
}

async function listGroups(db: Db, kind: GroupKind): Promise<NamedRow[]> {
  return db.all<NamedRow>(sql`SELECT id, name, created_at FROM ${raw(kind.table)} ORDER BY lower(name)`);
}

type Groups = Pick<
  Store,
  'ensureEnvironment' | 'getEnvironment' | 'listEnvironments' | 'deleteEnvironment' | 'ensureWorkerPool' |
  'getWorkerPool' | 'listWorkerPools' | 'deleteWorkerPool'
>;

export function groups(db: Database): Groups {
  const ensure = async (kind: GroupKind, name: string) => {
    const checked = checkName(`${kind.what} name`, name);
    return named(await db.transaction((tx) => ensureGroup(tx, kind, checked)));
  };
  const get = async (kind: GroupKind, idOrName: string) => {
    const row = await getGroup(db, kind, idOrName);
    return row ? named(row) : null;
  };
  return {
    ensureEnvironment: (name) => ensure(ENVIRONMENTS, name),
    getEnvironment: (idOrName) => get(ENVIRONMENTS, idOrName),
    listEnvironments: async () => (await listGroups(db, ENVIRONMENTS)).map(named),
    deleteEnvironment: (idOrName) => deleteGroup(db, ENVIRONMENTS, idOrName),
    ensureWorkerPool: (name) => ensure(WORKER_POOLS, name),
    getWorkerPool: (idOrName) => get(WORKER_POOLS, idOrName),
    listWorkerPools: async () => (await listGroups(db, WORKER_POOLS)).map(named),
    deleteWorkerPool: (idOrName) => deleteGroup(db, WORKER_POOLS, idOrName),
  };
}

/** Machines (targets and workers), their group memberships and health history. */
import { ReefError } from '../../errors.js';
import { normalizeThumbprint } from '../../pki/thumbprint.js';
import { ENVIRONMENTS, WORKER_POOLS, ensureGroup } from './groups.js';
import { newId } from './ids.js';
import { checkMachineInput, clampLimit, toTimestamp, type CheckedMachine } from './input.js';
import { fold, toHealth, toMachines, type HealthRow, type MachineRow, type Membership } from './rows.js';
import { join, raw, sql, where, type Database, type Db, type Sql } from './sql.js';
import type { Machine, Store } from './types.js';

/** Machines with their environments, roles and pools, in one more query whatever the count. */
async function hydrate(db: Db, rows: MachineRow[]): Promise<Machine[]> {
  if (rows.length === 0) return [];
  type Member = Membership & { what: 'env' | 'role' | 'pool' };
  const ids = rows.map((r) => r.id);
  const of = (column: string) => db.dialect.inList(raw(column), ids);
  const members = await db.all<Member>(sql`
    SELECT l.machine_id AS machine_id, 'env' AS what, e.name AS name FROM machine_environments l
      JOIN environments e ON e.id = l.environment_id WHERE ${of('l.machine_id')}
    UNION ALL
    SELECT machine_id, 'role', role FROM machine_roles WHERE ${of('machine_id')}
    UNION ALL
    SELECT l.machine_id, 'pool', p.name FROM machine_worker_pools l
      JOIN worker_pools p ON p.id = l.pool_id WHERE ${of('l.machine_id')}`);
  const kind = (what: Member['what']) => members.filter((m) => m.what === what);
  return toMachines(rows, kind('env'), kind('role'), kind('pool'));
}

const one = async (db: Db, row: MachineRow | undefined): Promise<Machine | null> =>
  row ? (await hydrate(db, [row]))[0]! : null;

function byIdOrName(db: Db, idOrName: string): Promise<MachineRow | undefined> {
  return db.one<MachineRow>(sql`SELECT * FROM machines WHERE id = ${idOrName} OR lower(name) = ${fold(idOrName)}
    ORDER BY id = ${idOrName} DESC LIMIT 1`);
}

const byThumbprint = (db: Db, thumbprint: string) =>
  db.one<MachineRow>(sql`SELECT * FROM machines WHERE thumbprint = ${thumbprint}`);

/** A certificate pending for another machine (a Tentacle certificate rotation) cannot be registered as anyone's. */
async function refusePendingElsewhere(db: Db, thumbprint: string, machineId: string | null): Promise<void> {
  const holder = await db.one<MachineRow>(sql`SELECT * FROM machines WHERE next_thumbprint = ${thumbprint}`);
  if (holder && holder.id !== machineId) {
    throw new ReefError(
      'REEF_CONFLICT',
      `Thumbprint ${thumbprint} is the pending new certificate of machine "${holder.name}" (${holder.id}), whose certificate rotation is under way; it cannot be registered as another machine.`,
    );
  }
}

const byName = (db: Db, name: string) => db.one<MachineRow>(sql`SELECT * FROM machines WHERE lower(name) = ${fold(name)}`);

async function load(db: Db, id: string): Promise<Machine> {
  return (await one(db, await db.one<MachineRow>(sql`SELECT * FROM machines WHERE id = ${id}`)))!;
}

async function setMemberships(db: Db, machineId: string, m: CheckedMachine): Promise<void> {
  await db.run(sql`DELETE FROM machine_environments WHERE machine_id = ${machineId}`);
  await db.run(sql`DELETE FROM machine_roles WHERE machine_id = ${machineId}`);
  await db.run(sql`DELETE FROM machine_worker_pools WHERE machine_id = ${machineId}`);
  for (const name of m.environments) {
    const env = await ensureGroup(db, ENVIRONMENTS, name);
    await db.run(sql`INSERT INTO machine_environments (machine_id, environment_id) VALUES (${machineId}, ${env.id})`);
  }
  const roles = db.dialect.textRows(['role'], m.roles.map((role) => [role]));
  await db.run(sql`INSERT INTO machine_roles (machine_id, role) SELECT ${machineId}, role FROM (${roles}) AS r`);
  for (const name of m.workerPools) {
    const pool = await ensureGroup(db, WORKER_POOLS, name);
    await db.run(sql`INSERT INTO machine_worker_pools (machine_id, pool_id) VALUES (${machineId}, ${pool.id})`);
  }
}

async function insert(db: Db, m: CheckedMachine): Promise<Machine> {
  const id = newId('m');
  await db.run(sql`INSERT INTO machines (id, name, kind, thumbprint, comms_style, endpoint_host, endpoint_port,
      tentacle_version, platform, created_at)
    VALUES (${id}, ${m.name}, ${m.kind}, ${m.thumbprint}, ${m.commsStyle}, ${m.endpoint?.host ?? null},
      ${m.endpoint?.port ?? null}, ${m.tentacleVersion}, ${db.dialect.json(m.platform)}, ${new Date().toISOString()})`);
  await setMemberships(db, id, m);
  return load(db, id);
}

type Machines = Pick<
  Store,
  'createMachine' | 'upsertMachine' | 'getMachine' | 'getMachineByThumbprint' | 'listMachines' | 'deleteMachine' |
  'touchMachine' | 'touchMachines' | 'recordHealth' | 'listHealth'
>;

export function machines(database: Database): Machines {
  const d = database.dialect;
  return {
    // Races with another node end in a unique violation: the retry then reports the conflict.
    createMachine: async (input) => {
      const m = checkMachineInput(input);
      return database.transaction(async (db) => {
        const sameThumbprint = await byThumbprint(db, m.thumbprint);
        if (sameThumbprint) {
          throw new ReefError(
            'REEF_CONFLICT',
            `A machine with thumbprint ${m.thumbprint} is already registered as "${sameThumbprint.name}" (${sameThumbprint.id}). ` +
              `Register again with --force to replace it, or deregister it first.`,
          );
        }
        await refusePendingElsewhere(db, m.thumbprint, null);
        const sameName = await byName(db, m.name);
        if (sameName) {
          throw new ReefError(
            'REEF_CONFLICT',
            `The machine name "${m.name}" is already used by ${sameName.id} (thumbprint ${sameName.thumbprint}). ` +
              `Choose another --name, or register with --force to replace that machine.`,
          );
        }
        return insert(db, m);
      });
    },

    upsertMachine: async (input) => {
      const m = checkMachineInput(input);
      return database.transaction(async (db) => {
        const sameThumbprint = await byThumbprint(db, m.thumbprint);
        const sameName = await byName(db, m.name);
        if (sameThumbprint && sameName && sameThumbprint.id !== sameName.id) {
          throw new ReefError(
            'REEF_CONFLICT',
            `Thumbprint ${m.thumbprint} belongs to machine "${sameThumbprint.name}" (${sameThumbprint.id}) but the name ` +
              `"${m.name}" belongs to another machine (${sameName.id}). Deregister one of them, or choose another --name.`,
          );
        }
        const existing = sameThumbprint ?? sameName;
        await refusePendingElsewhere(db, m.thumbprint, existing?.id ?? null);
        if (!existing) return { machine: await insert(db, m), created: true };
        // A new certificate registered by hand ends any rotation under way (its pending thumbprint with it).
        if (existing.thumbprint !== m.thumbprint) await db.run(sql`UPDATE machines SET next_thumbprint = NULL WHERE id = ${existing.id}`);
        await db.run(sql`UPDATE machines SET name = ${m.name}, kind = ${m.kind}, thumbprint = ${m.thumbprint},
            comms_style = ${m.commsStyle}, endpoint_host = ${m.endpoint?.host ?? null}, endpoint_port = ${m.endpoint?.port ?? null},
            tentacle_version = coalesce(${m.tentacleVersion}, tentacle_version), platform = coalesce(${d.json(m.platform)}, platform)
          WHERE id = ${existing.id}`);
        await setMemberships(db, existing.id, m);
        return { machine: await load(db, existing.id), created: false };
      });
    },

    getMachine: async (idOrName) => one(database, await byIdOrName(database, idOrName)),

    getMachineByThumbprint: async (thumbprint) =>
      one(database, await byThumbprint(database, normalizeThumbprint(thumbprint))),

    listMachines: async (filter = {}) => {
      const conditions: Sql[] = [];
      if (filter.kind !== undefined) conditions.push(sql`m.kind = ${filter.kind}`);
      if (filter.environment !== undefined) {
        conditions.push(sql`EXISTS (SELECT 1 FROM machine_environments l JOIN environments e ON e.id = l.environment_id
          WHERE l.machine_id = m.id AND lower(e.name) = ${fold(filter.environment)})`);
      }
      if (filter.role !== undefined) {
        conditions.push(sql`EXISTS (SELECT 1 FROM machine_roles r WHERE r.machine_id = m.id AND lower(r.role) = ${fold(filter.role)})`);
      }
      if (filter.workerPool !== undefined) {
        conditions.push(sql`EXISTS (SELECT 1 FROM machine_worker_pools l JOIN worker_pools p ON p.id = l.pool_id
          WHERE l.machine_id = m.id AND lower(p.name) = ${fold(filter.workerPool)})`);
      }
      if (filter.names !== undefined) conditions.push(d.inList(sql`lower(m.name)`, filter.names.map(fold)));
      const rows = await database.all<MachineRow>(sql`SELECT m.* FROM machines m ${where(conditions)} ORDER BY lower(m.name)`);
      return hydrate(database, rows);
    },

    // Health history goes with the machine (ON DELETE CASCADE); task history stays.
    deleteMachine: (idOrName) =>
      database.transaction(async (db) => {
        const row = await byIdOrName(db, idOrName);
        return row !== undefined && (await db.run(sql`DELETE FROM machines WHERE id = ${row.id}`)) > 0;
      }),

    touchMachine: async (thumbprint, touch) => {
      const sets = [sql`last_seen_at = ${toTimestamp(touch.lastSeenAt)}`];
      if (touch.carrier !== undefined) sets.push(sql`carrier = ${touch.carrier}`);
      if (touch.version !== undefined) sets.push(sql`tentacle_version = ${touch.version}`);
      if (touch.platform !== undefined) sets.push(sql`platform = ${d.json(touch.platform)}`);
      const changed = await database.run(
        sql`UPDATE machines SET ${join(sets, ', ')} WHERE thumbprint = ${normalizeThumbprint(thumbprint)}`,
      );
      return changed > 0;
    },

    touchMachines: async (contacts, at) => {
      if (contacts.length === 0) return;
      // Grouped by what is written: the last-seen time alone, or with each carrier.
      const byCarrier = new Map<string | undefined, string[]>();
      for (const { thumbprint, carrier } of contacts) {
        const group = byCarrier.get(carrier) ?? [];
        group.push(normalizeThumbprint(thumbprint));
        byCarrier.set(carrier, group);
      }
      await database.transaction(async (db) => {
        for (const [carrier, thumbprints] of byCarrier) {
          const sets = [sql`last_seen_at = ${toTimestamp(at)}`];
          if (carrier !== undefined) sets.push(sql`carrier = ${carrier}`);
          for (const list of d.listsPerStatement(thumbprints)) {
            await db.run(sql`UPDATE machines SET ${join(sets, ', ')} WHERE ${d.inList(raw('thumbprint'), list)}`);
          }
        }
      });
    },

    recordHealth: async (machineId, health) => {
      const at = toTimestamp(health.at);
      return database.transaction(async (db) => {
        const updated = await db.run(sql`UPDATE machines SET last_health = ${health.ok ? 'healthy' : 'unhealthy'},
          last_health_at = ${at} WHERE id = ${machineId}`);
        if (updated === 0) throw new ReefError('REEF_NOT_FOUND', `No machine has id ${machineId}; it may have been deleted.`);
        const row = await db.one<HealthRow>(sql`INSERT INTO health_checks (machine_id, ok, details, at)
          VALUES (${machineId}, ${health.ok}, ${d.json(health.details ?? null)}, ${at}) RETURNING *`);
        return toHealth(row!);
      });
    },

    listHealth: async (machineId, limit) => {
      const rows = await database.all<HealthRow>(sql`SELECT * FROM health_checks WHERE machine_id = ${machineId}
        ORDER BY id DESC LIMIT ${clampLimit(limit, 20, 1000)}`);
      return rows.map(toHealth);
    },
  };
}

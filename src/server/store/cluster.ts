/**
 * The Coordination contract (coordination.ts) on either database. Lease and heartbeat times
 * come from `Dialect.clock`: PostgreSQL's now(), so nodes whose clocks disagree still agree
 * on who owns what; on SQLite (one node) the process clock. Claims lock their rows with
 * SKIP LOCKED on PostgreSQL, so nodes claiming at once divide the rows instead of queueing
 * on each other, and the lock re-checks each row as last committed, so a row another node
 * claimed a moment ago is not taken again; SQLite's write transaction holds the whole file.
 */
import type { ClaimOptions, Coordination, TentacleLink, WorkKey } from './coordination.js';
import { jsonOf, type JsonColumn } from './rows.js';
import { join, raw, sql, type Database, type Db, type Sql } from './sql.js';

interface NodeRow {
  name: string;
  incarnation: string;
  info: JsonColumn;
  started_at: string;
  heartbeat_at: string;
  stopped_at: string | null;
  alive: boolean | number;
  links: number;
  owned: number;
}

const UNFINISHED_STATES = ['Pending', 'Running'] as const;
const UNFINISHED = raw(`(${UNFINISHED_STATES.map((state) => `'${state}'`).join(', ')})`);

/** Releases what a node held: its links and its leases. */
async function forget(db: Db, name: string): Promise<void> {
  await db.run(sql`DELETE FROM tentacle_links WHERE node_name = ${name}`);
  await db.run(sql`UPDATE task_machines SET owner_node = NULL, lease_expires_at = NULL WHERE owner_node = ${name}`);
}

/** Task machines `node` may claim now (see Coordination.claimWork), oldest task first. */
function claimable(db: Db, node: string, options: ClaimOptions, lock: Sql): Sql {
  return sql`${claimableWhere(db, node, options, sql`c.task_id AS pick_task, c.machine_id AS pick_machine`, sql`IN ${UNFINISHED}`)}
    ORDER BY t.num, c.machine_id
    LIMIT ${options.limit}
    ${lock}`;
}

/**
 * Whether `claimable` has any row: asked on every new Tentacle connection, and most often
 * the answer is no. One branch per unfinished state with `=`, and no ORDER BY: for an IN
 * list that walks an index, and for ORDER BY with LIMIT, SQLite builds temporary b-trees
 * (see the SQLite dialect's inList), which this query on every connection must not.
 */
function anyClaimable(db: Db, node: string, options: ClaimOptions): Sql {
  const branches = UNFINISHED_STATES.map((state) => claimableWhere(db, node, options, sql`1 AS found`, sql`= ${state}`));
  return sql`${join(branches, ' UNION ALL ')} LIMIT 1`;
}

/** The columns of unfinished task machines (`state`: the condition on their state) that `node` may claim now. */
function claimableWhere(db: Db, node: string, options: ClaimOptions, columns: Sql, state: Sql): Sql {
  return sql`SELECT ${columns} FROM task_machines c
    JOIN tasks t ON t.id = c.task_id
    LEFT JOIN machines m ON m.id = c.machine_id
    WHERE c.state ${state} AND t.state IN ('Queued', 'Running')
      AND (c.owner_node IS NULL OR c.lease_expires_at < ${db.dialect.clock(0)})
      AND (t.cancel_requested_at IS NOT NULL OR m.id IS NULL OR m.comms_style = 'listening'
        OR EXISTS (SELECT 1 FROM tentacle_links l WHERE l.thumbprint = m.thumbprint AND l.node_name = ${node})
        OR NOT EXISTS (SELECT 1 FROM tentacle_links l JOIN nodes n ON n.name = l.node_name
                       WHERE l.thumbprint = m.thumbprint AND ${liveNode(db, options.staleAfterMs)}))`;
}

/** Node `n` heartbeats within `staleAfterMs` and has not stopped. */
const liveNode = (db: Db, staleAfterMs: number) =>
  sql`(n.stopped_at IS NULL AND n.heartbeat_at > ${db.dialect.clock(-staleAfterMs)})`;

export function coordination(database: Database): Coordination {
  const d = database.dialect;
  return {
    joinNode: async (node) => {
      await database.transaction(async (db) => {
        const now = d.clock(0);
        await db.run(sql`INSERT INTO nodes (name, incarnation, info, started_at, heartbeat_at)
          VALUES (${node.name}, ${node.incarnation}, ${d.json(node.info)}, ${now}, ${now})
          ON CONFLICT (name) DO UPDATE SET incarnation = excluded.incarnation, info = excluded.info,
            started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, stopped_at = NULL`);
        await forget(db, node.name);
      });
    },

    heartbeatNode: async (name, incarnation, info) => {
      const changed = await database.run(sql`UPDATE nodes SET heartbeat_at = ${d.clock(0)}, info = ${d.json(info)}
        WHERE name = ${name} AND incarnation = ${incarnation}`);
      return changed > 0;
    },

    leaveNode: async (name) => {
      await database.transaction(async (db) => {
        await db.run(sql`UPDATE nodes SET stopped_at = ${d.clock(0)} WHERE name = ${name}`);
        await forget(db, name);
      });
    },

    listNodes: async (staleAfterMs) => {
      const rows = await database.all<NodeRow>(sql`SELECT n.*, ${liveNode(database, staleAfterMs)} AS alive,
          (SELECT count(*) FROM tentacle_links l WHERE l.node_name = n.name) AS links,
          (SELECT count(*) FROM task_machines tm WHERE tm.owner_node = n.name AND tm.state IN ${UNFINISHED}) AS owned
        FROM nodes n ORDER BY n.name`);
      return rows.map((r) => {
        const alive = r.alive === true || r.alive === 1;
        return {
          name: r.name,
          incarnation: r.incarnation,
          info: jsonOf(r.info),
          startedAt: r.started_at,
          heartbeatAt: r.heartbeat_at,
          stoppedAt: r.stopped_at,
          alive,
          connectedTentacles: alive ? r.links : 0,
          ownedWork: r.owned,
        };
      });
    },

    addLink: async (node, thumbprint, carrier) => {
      await database.run(sql`INSERT INTO tentacle_links (node_name, thumbprint, carrier, connected_at)
        VALUES (${node}, ${thumbprint}, ${carrier}, ${d.clock(0)})
        ON CONFLICT (thumbprint, node_name) DO UPDATE SET carrier = excluded.carrier, connected_at = excluded.connected_at`);
    },

    removeLink: async (node, thumbprint) => {
      await database.run(sql`DELETE FROM tentacle_links WHERE node_name = ${node} AND thumbprint = ${thumbprint}`);
    },

    addLinks: async (node, links) => {
      if (links.length === 0) return;
      // One parameter for all rows; `WHERE true` lets SQLite parse ON CONFLICT after a SELECT.
      const rows = d.textRows(['thumbprint', 'carrier'], links.map(({ thumbprint, carrier }) => [thumbprint, carrier]));
      await database.run(sql`INSERT INTO tentacle_links (node_name, thumbprint, carrier, connected_at)
        SELECT ${node}, r.thumbprint, r.carrier, ${d.clock(0)} FROM (${rows}) AS r WHERE true
        ON CONFLICT (thumbprint, node_name) DO UPDATE SET carrier = excluded.carrier, connected_at = excluded.connected_at`);
    },

    removeLinks: async (node, thumbprints) => {
      if (thumbprints.length === 0) return;
      const remove = (db: Db, list: readonly string[]) => db.run(sql`DELETE FROM tentacle_links WHERE node_name = ${node} AND ${d.inList(raw('thumbprint'), list)}`);
      const lists = d.listsPerStatement(thumbprints);
      if (lists.length === 1) await remove(database, lists[0]!);
      else {
        await database.transaction(async (db) => {
          for (const list of lists) await remove(db, list);
        });
      }
    },

    listLinks: (staleAfterMs) =>
      database.all<TentacleLink>(sql`SELECT l.thumbprint, l.node_name AS node, l.carrier, l.connected_at AS "connectedAt"
        FROM tentacle_links l JOIN nodes n ON n.name = l.node_name
        WHERE ${liveNode(database, staleAfterMs)} ORDER BY l.thumbprint, l.node_name`),

    linkHolders: async (thumbprint, staleAfterMs) => {
      const rows = await database.all<{ node_name: string }>(sql`SELECT l.node_name
        FROM tentacle_links l JOIN nodes n ON n.name = l.node_name
        WHERE l.thumbprint = ${thumbprint} AND ${liveNode(database, staleAfterMs)} ORDER BY l.node_name`);
      return rows.map((r) => r.node_name);
    },

    claimWork: async (node, options) => {
      // Most calls find nothing (every tentacle connecting asks): those are answered by a
      // read that takes no write lock (SQLite) and no row locks (PostgreSQL).
      if ((await database.all(anyClaimable(database, node, options))).length === 0) return [];
      return database.all<WorkKey>(sql`UPDATE task_machines
        SET owner_node = ${node}, lease_expires_at = ${d.clock(options.leaseMs)}
        FROM (${claimable(database, node, options, d.forUpdateSkipLocked('c'))}) AS picked
        WHERE task_id = picked.pick_task AND machine_id = picked.pick_machine
        RETURNING task_id AS "taskId", machine_id AS "machineId"`);
    },

    renewLeases: (node, leaseMs) =>
      database.all<WorkKey>(sql`UPDATE task_machines SET lease_expires_at = ${d.clock(leaseMs)}
        WHERE owner_node = ${node} AND state IN ${UNFINISHED}
        RETURNING task_id AS "taskId", machine_id AS "machineId"`),

    releaseWork: async (node, work) => {
      const changed = await database.run(sql`UPDATE task_machines SET owner_node = NULL, lease_expires_at = NULL
        WHERE task_id = ${work.taskId} AND machine_id = ${work.machineId} AND owner_node = ${node}`);
      return changed > 0;
    },

    unfinishedMachines: async (taskId) => {
      const row = await database.one<{ n: number }>(
        sql`SELECT count(*) AS n FROM task_machines WHERE task_id = ${taskId} AND state IN ${UNFINISHED}`,
      );
      return row?.n ?? 0;
    },

    sharedSetting: async (key, proposed) => {
      await database.run(sql`INSERT INTO cluster_settings (key, value, created_at) VALUES (${key}, ${proposed}, ${d.clock(0)})
        ON CONFLICT (key) DO NOTHING`);
      return (await database.one<{ value: string }>(sql`SELECT value FROM cluster_settings WHERE key = ${key}`))!.value;
    },

    replaceSharedSetting: async (key, value) => {
      await database.run(sql`INSERT INTO cluster_settings (key, value, created_at) VALUES (${key}, ${value}, ${d.clock(0)})
        ON CONFLICT (key) DO UPDATE SET value = ${value}`);
    },

    getSharedSetting: async (key) =>
      (await database.one<{ value: string }>(sql`SELECT value FROM cluster_settings WHERE key = ${key}`))?.value ?? null,
  };
}

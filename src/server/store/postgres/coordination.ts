import type { ClaimOptions, Coordination, NodeInput, NodeRecord, TentacleLink, WorkKey } from '../coordination.js';
import type { JsonObject } from '../types.js';
import { pgJson } from './rows.js';
import type { Db } from './store.js';

/** `$n` milliseconds as an interval, on the database's clock. */
const ms = (param: string) => `(${param}::double precision * interval '1 millisecond')`;
const LIVE_NODE = (alias: string, staleParam: string) =>
  `${alias}.stopped_at IS NULL AND ${alias}.heartbeat_at > now() - ${ms(staleParam)}`;

interface NodeRow {
  name: string;
  incarnation: string;
  info: JsonObject;
  started_at: string;
  heartbeat_at: string;
  stopped_at: string | null;
  alive: boolean;
  links: number;
  owned: number;
}

/**
 * Coordination on PostgreSQL. Claims take row locks with SKIP LOCKED, so nodes claiming
 * at once divide the rows instead of queueing on each other; the lock also re-checks the
 * row as last committed, so a row another node claimed a moment ago is not taken again.
 */
export class PostgresCoordination implements Coordination {
  constructor(
    private readonly db: Db,
    private readonly tx: <T>(fn: (db: Db) => Promise<T>) => Promise<T>,
  ) {}

  async joinNode(node: NodeInput): Promise<void> {
    await this.tx(async (db) => {
      await db.run(
        `INSERT INTO nodes (name, incarnation, info, started_at, heartbeat_at) VALUES ($1, $2, $3::json, now(), now())
         ON CONFLICT (name) DO UPDATE SET incarnation = excluded.incarnation, info = excluded.info,
           started_at = now(), heartbeat_at = now(), stopped_at = NULL`,
        [node.name, node.incarnation, pgJson(node.info)],
      );
      await this.#forget(db, node.name);
    });
  }

  async heartbeatNode(name: string, incarnation: string, info: JsonObject): Promise<boolean> {
    const sql = 'UPDATE nodes SET heartbeat_at = now(), info = $3::json WHERE name = $1 AND incarnation = $2';
    return (await this.db.run(sql, [name, incarnation, pgJson(info)])) > 0;
  }

  async leaveNode(name: string): Promise<void> {
    await this.tx(async (db) => {
      await db.run('UPDATE nodes SET stopped_at = now() WHERE name = $1', [name]);
      await this.#forget(db, name);
    });
  }

  async #forget(db: Db, name: string): Promise<void> {
    await db.run('DELETE FROM tentacle_links WHERE node_name = $1', [name]);
    await db.run('UPDATE task_machines SET owner_node = NULL, lease_expires_at = NULL WHERE owner_node = $1', [name]);
  }

  async listNodes(staleAfterMs: number): Promise<NodeRecord[]> {
    const rows = await this.db.rows<NodeRow>(
      `SELECT n.*, (${LIVE_NODE('n', '$1')}) AS alive,
         (SELECT count(*) FROM tentacle_links l WHERE l.node_name = n.name)::integer AS links,
         (SELECT count(*) FROM task_machines tm WHERE tm.owner_node = n.name AND tm.state IN ('Pending', 'Running'))::integer AS owned
       FROM nodes n ORDER BY n.name`,
      [staleAfterMs],
    );
    return rows.map((r) => ({
      name: r.name,
      incarnation: r.incarnation,
      info: r.info,
      startedAt: r.started_at,
      heartbeatAt: r.heartbeat_at,
      stoppedAt: r.stopped_at,
      alive: r.alive,
      connectedTentacles: r.alive ? r.links : 0,
      ownedWork: r.owned,
    }));
  }

  async addLink(node: string, thumbprint: string, carrier: string): Promise<void> {
    await this.db.run(
      `INSERT INTO tentacle_links (node_name, thumbprint, carrier, connected_at) VALUES ($1, $2, $3, now())
       ON CONFLICT (thumbprint, node_name) DO UPDATE SET carrier = excluded.carrier, connected_at = now()`,
      [node, thumbprint, carrier],
    );
  }

  async removeLink(node: string, thumbprint: string): Promise<void> {
    await this.db.run('DELETE FROM tentacle_links WHERE node_name = $1 AND thumbprint = $2', [node, thumbprint]);
  }

  async listLinks(staleAfterMs: number): Promise<TentacleLink[]> {
    return this.db.rows<TentacleLink>(
      `SELECT l.thumbprint, l.node_name AS node, l.carrier FROM tentacle_links l JOIN nodes n ON n.name = l.node_name
       WHERE ${LIVE_NODE('n', '$1')} ORDER BY l.thumbprint, l.node_name`,
      [staleAfterMs],
    );
  }

  async linkHolders(thumbprint: string, staleAfterMs: number): Promise<string[]> {
    const rows = await this.db.rows<{ node_name: string }>(
      `SELECT l.node_name FROM tentacle_links l JOIN nodes n ON n.name = l.node_name
       WHERE l.thumbprint = $1 AND ${LIVE_NODE('n', '$2')} ORDER BY l.node_name`,
      [thumbprint, staleAfterMs],
    );
    return rows.map((r) => r.node_name);
  }

  async claimWork(node: string, options: ClaimOptions): Promise<WorkKey[]> {
    const rows = await this.db.rows<{ task_id: string; machine_id: string }>(
      `UPDATE task_machines tm SET owner_node = $1, lease_expires_at = now() + ${ms('$2')}
       FROM (
         SELECT c.task_id, c.machine_id FROM task_machines c
         JOIN tasks t ON t.id = c.task_id
         LEFT JOIN machines m ON m.id = c.machine_id
         WHERE c.state IN ('Pending', 'Running') AND t.state IN ('Queued', 'Running')
           AND (c.owner_node IS NULL OR c.lease_expires_at < now())
           AND (t.cancel_requested_at IS NOT NULL OR m.id IS NULL OR m.comms_style = 'listening'
             OR EXISTS (SELECT 1 FROM tentacle_links l WHERE l.thumbprint = m.thumbprint AND l.node_name = $1)
             OR NOT EXISTS (SELECT 1 FROM tentacle_links l JOIN nodes n ON n.name = l.node_name
                            WHERE l.thumbprint = m.thumbprint AND ${LIVE_NODE('n', '$3')}))
         ORDER BY t.num, c.machine_id
         LIMIT $4
         FOR UPDATE OF c SKIP LOCKED
       ) picked
       WHERE tm.task_id = picked.task_id AND tm.machine_id = picked.machine_id
       RETURNING tm.task_id, tm.machine_id`,
      [node, options.leaseMs, options.staleAfterMs, options.limit],
    );
    return rows.map((r) => ({ taskId: r.task_id, machineId: r.machine_id }));
  }

  async renewLeases(node: string, leaseMs: number): Promise<WorkKey[]> {
    const rows = await this.db.rows<{ task_id: string; machine_id: string }>(
      `UPDATE task_machines SET lease_expires_at = now() + ${ms('$2')}
       WHERE owner_node = $1 AND state IN ('Pending', 'Running')
       RETURNING task_id, machine_id`,
      [node, leaseMs],
    );
    return rows.map((r) => ({ taskId: r.task_id, machineId: r.machine_id }));
  }

  async releaseWork(node: string, work: WorkKey): Promise<boolean> {
    const changed = await this.db.run(
      `UPDATE task_machines SET owner_node = NULL, lease_expires_at = NULL
       WHERE task_id = $1 AND machine_id = $2 AND owner_node = $3`,
      [work.taskId, work.machineId, node],
    );
    return changed > 0;
  }

  async unfinishedMachines(taskId: string): Promise<number> {
    const row = await this.db.one<{ n: number }>(
      `SELECT count(*)::integer AS n FROM task_machines WHERE task_id = $1 AND state IN ('Pending', 'Running')`,
      [taskId],
    );
    return row?.n ?? 0;
  }

  async sharedSetting(key: string, proposed: string): Promise<string> {
    await this.db.run('INSERT INTO cluster_settings (key, value, created_at) VALUES ($1, $2, now()) ON CONFLICT (key) DO NOTHING', [key, proposed]);
    return (await this.getSharedSetting(key))!;
  }

  async getSharedSetting(key: string): Promise<string | null> {
    return (await this.db.one<{ value: string }>('SELECT value FROM cluster_settings WHERE key = $1', [key]))?.value ?? null;
  }
}

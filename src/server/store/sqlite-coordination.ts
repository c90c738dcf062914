import type { Statement } from 'better-sqlite3';
import type { ClaimOptions, Coordination, NodeInput, NodeRecord, TentacleLink, WorkKey } from './coordination.js';
import type { JsonObject } from './types.js';

interface NodeRow {
  name: string;
  incarnation: string;
  info: string;
  started_at: string;
  heartbeat_at: string;
  stopped_at: string | null;
  links: number;
  owned: number;
}

const isoIn = (ms: number) => new Date(Date.now() + ms).toISOString();
const LIVE_NODE = (alias: string) => `${alias}.stopped_at IS NULL AND ${alias}.heartbeat_at > ?`;

/**
 * Coordination on SQLite: one node in practice (a SQLite file is not shared between
 * machines), but the same rows and rules as PostgreSQL, so the engine has one code path.
 * Timestamps are ISO-8601 UTC text, which compares correctly as text.
 */
export class SqliteCoordination implements Coordination {
  constructor(
    private readonly sql: (text: string) => Statement,
    private readonly write: <T>(fn: () => T) => T,
  ) {}

  async joinNode(node: NodeInput): Promise<void> {
    const now = new Date().toISOString();
    this.write(() => {
      this.sql(
        `INSERT INTO nodes (name, incarnation, info, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET incarnation = excluded.incarnation, info = excluded.info,
           started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, stopped_at = NULL`,
      ).run(node.name, node.incarnation, JSON.stringify(node.info), now, now);
      this.#forget(node.name);
    });
  }

  async heartbeatNode(name: string, incarnation: string, info: JsonObject): Promise<boolean> {
    const at = new Date().toISOString();
    const sql = 'UPDATE nodes SET heartbeat_at = ?, info = ? WHERE name = ? AND incarnation = ?';
    return this.write(() => this.sql(sql).run(at, JSON.stringify(info), name, incarnation).changes > 0);
  }

  async leaveNode(name: string): Promise<void> {
    const at = new Date().toISOString();
    this.write(() => {
      this.sql('UPDATE nodes SET stopped_at = ? WHERE name = ?').run(at, name);
      this.#forget(name);
    });
  }

  #forget(name: string): void {
    this.sql('DELETE FROM tentacle_links WHERE node_name = ?').run(name);
    this.sql('UPDATE task_machines SET owner_node = NULL, lease_expires_at = NULL WHERE owner_node = ?').run(name);
  }

  async listNodes(staleAfterMs: number): Promise<NodeRecord[]> {
    const cutoff = isoIn(-staleAfterMs);
    const rows = this.sql(
      `SELECT n.*, (SELECT count(*) FROM tentacle_links l WHERE l.node_name = n.name) AS links,
         (SELECT count(*) FROM task_machines tm WHERE tm.owner_node = n.name AND tm.state IN ('Pending', 'Running')) AS owned
       FROM nodes n ORDER BY n.name`,
    ).all() as NodeRow[];
    return rows.map((r) => {
      const alive = r.stopped_at === null && r.heartbeat_at > cutoff;
      return {
        name: r.name,
        incarnation: r.incarnation,
        info: JSON.parse(r.info) as JsonObject,
        startedAt: r.started_at,
        heartbeatAt: r.heartbeat_at,
        stoppedAt: r.stopped_at,
        alive,
        connectedTentacles: alive ? r.links : 0,
        ownedWork: r.owned,
      };
    });
  }

  async addLink(node: string, thumbprint: string, carrier: string): Promise<void> {
    const at = new Date().toISOString();
    this.write(() =>
      this.sql(
        `INSERT INTO tentacle_links (node_name, thumbprint, carrier, connected_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (thumbprint, node_name) DO UPDATE SET carrier = excluded.carrier, connected_at = excluded.connected_at`,
      ).run(node, thumbprint, carrier, at),
    );
  }

  async removeLink(node: string, thumbprint: string): Promise<void> {
    this.write(() => this.sql('DELETE FROM tentacle_links WHERE node_name = ? AND thumbprint = ?').run(node, thumbprint));
  }

  async listLinks(staleAfterMs: number): Promise<TentacleLink[]> {
    return this.sql(
      `SELECT l.thumbprint, l.node_name AS node, l.carrier FROM tentacle_links l JOIN nodes n ON n.name = l.node_name
       WHERE ${LIVE_NODE('n')} ORDER BY l.thumbprint, l.node_name`,
    ).all(isoIn(-staleAfterMs)) as TentacleLink[];
  }

  async linkHolders(thumbprint: string, staleAfterMs: number): Promise<string[]> {
    return this.sql(
      `SELECT l.node_name FROM tentacle_links l JOIN nodes n ON n.name = l.node_name
       WHERE l.thumbprint = ? AND ${LIVE_NODE('n')} ORDER BY l.node_name`,
    )
      .pluck()
      .all(thumbprint, isoIn(-staleAfterMs)) as string[];
  }

  async claimWork(node: string, options: ClaimOptions): Promise<WorkKey[]> {
    const now = new Date().toISOString();
    const lease = isoIn(options.leaseMs);
    const candidates = () =>
      this.sql(
        `SELECT c.task_id AS taskId, c.machine_id AS machineId FROM task_machines c
         JOIN tasks t ON t.id = c.task_id
         LEFT JOIN machines m ON m.id = c.machine_id
         WHERE c.state IN ('Pending', 'Running') AND t.state IN ('Queued', 'Running')
           AND (c.owner_node IS NULL OR c.lease_expires_at < ?)
           AND (t.cancel_requested_at IS NOT NULL OR m.id IS NULL OR m.comms_style = 'listening'
             OR EXISTS (SELECT 1 FROM tentacle_links l WHERE l.thumbprint = m.thumbprint AND l.node_name = ?)
             OR NOT EXISTS (SELECT 1 FROM tentacle_links l JOIN nodes n ON n.name = l.node_name
                            WHERE l.thumbprint = m.thumbprint AND ${LIVE_NODE('n')}))
         ORDER BY t.num, c.machine_id
         LIMIT ?`,
      ).all(now, node, isoIn(-options.staleAfterMs), options.limit) as WorkKey[];
    // Most calls find nothing (every tentacle connecting asks): answer those without
    // taking the write lock.
    if (candidates().length === 0) return [];
    return this.write(() => {
      const rows = candidates();
      const claim = this.sql('UPDATE task_machines SET owner_node = ?, lease_expires_at = ? WHERE task_id = ? AND machine_id = ?');
      for (const row of rows) claim.run(node, lease, row.taskId, row.machineId);
      return rows;
    });
  }

  async renewLeases(node: string, leaseMs: number): Promise<WorkKey[]> {
    return this.write(
      () =>
        this.sql(
          `UPDATE task_machines SET lease_expires_at = ? WHERE owner_node = ? AND state IN ('Pending', 'Running')
           RETURNING task_id AS taskId, machine_id AS machineId`,
        ).all(isoIn(leaseMs), node) as WorkKey[],
    );
  }

  async releaseWork(node: string, work: WorkKey): Promise<boolean> {
    return this.write(
      () =>
        this.sql(
          `UPDATE task_machines SET owner_node = NULL, lease_expires_at = NULL WHERE task_id = ? AND machine_id = ? AND owner_node = ?`,
        ).run(work.taskId, work.machineId, node).changes > 0,
    );
  }

  async unfinishedMachines(taskId: string): Promise<number> {
    return this.sql(`SELECT count(*) FROM task_machines WHERE task_id = ? AND state IN ('Pending', 'Running')`)
      .pluck()
      .get(taskId) as number;
  }

  async sharedSetting(key: string, proposed: string): Promise<string> {
    const at = new Date().toISOString();
    this.write(() => this.sql('INSERT INTO cluster_settings (key, value, created_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING').run(key, proposed, at));
    return (await this.getSharedSetting(key))!;
  }

  async getSharedSetting(key: string): Promise<string | null> {
    return (this.sql('SELECT value FROM cluster_settings WHERE key = ?').pluck().get(key) as string | undefined) ?? null;
  }
}

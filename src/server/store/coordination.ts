/**
 * How server nodes sharing one store divide the work. SQLite (one node) and PostgreSQL
 * (a cluster) implement the same contract, so the task engine has one code path.
 *
 * - Every node records itself in `nodes` and beats a heartbeat; a node whose heartbeat is
 *   older than `staleAfterMs` counts as dead.
 * - A node records which tentacles hold a live connection to it (`tentacle_links`): work for
 *   a polling tentacle runs on a node it is connected to.
 * - A machine's part of a task (a task machine) is supervised by one node at a time under a
 *   lease. A node claims work it can do (see `claimWork`), renews its leases while it works,
 *   and releases them when it stops or hands over. An expired lease means the owner died or
 *   lost the database: another node may claim the work, and resumes it where the store
 *   says it was (scripts are found again by ticket, so none starts twice).
 *
 * Lease and heartbeat times are measured by the store's clock (PostgreSQL's now()), so
 * nodes whose clocks disagree still agree on who owns what.
 */
import type { JsonObject, Timestamp } from './values.js';

export interface NodeInput {
  name: string;
  /** New on every start: tells a restarted node from a second process using the same name. */
  incarnation: string;
  /** What the node shows about itself: version, ports, host (for `reef nodes list`). */
  info: JsonObject;
}

export interface NodeRecord {
  name: string;
  incarnation: string;
  info: JsonObject;
  startedAt: Timestamp;
  heartbeatAt: Timestamp;
  /** Set when the node shut down cleanly. */
  stoppedAt: Timestamp | null;
  /** Heartbeat within the stale cutoff and not stopped. */
  alive: boolean;
  /** Tentacles connected to it (0 for a node that is not alive). */
  connectedTentacles: number;
  /** Unfinished task machines it supervises (claims of a dead node count until taken over). */
  ownedWork: number;
}

/** A tentacle connected to a node. */
export interface TentacleLink {
  thumbprint: string;
  node: string;
  carrier: string;
  /** When the tentacle's latest connection to that node came up. */
  connectedAt: string;
}

/** A machine's part of a task, as claimed or owned by a node. */
export interface WorkKey {
  taskId: string;
  machineId: string;
}

export interface ClaimOptions {
  /** How long the claim holds without renewal. */
  leaseMs: number;
  /** A node whose heartbeat is older than this is dead: its links no longer count. */
  staleAfterMs: number;
  /** Most rows claimed in one call. */
  limit: number;
}

export interface Coordination {
  /**
   * Records a node starting: a new incarnation, a fresh heartbeat, no links. Work the same
   * name still owns from an earlier process is released, so it is claimed again at once.
   */
  joinNode(node: NodeInput): Promise<void>;
  /**
   * Refreshes the heartbeat and what the node shows about itself. false when another process has since joined under this name
   * (the caller should stop: two nodes with one name would steal each other's leases).
   */
  heartbeatNode(name: string, incarnation: string, info: JsonObject): Promise<boolean>;
  /** A clean shutdown: marks the node stopped, drops its links and releases its work. */
  leaveNode(name: string): Promise<void>;
  /** Every node ever joined, by name, with liveness judged by `staleAfterMs`. */
  listNodes(staleAfterMs: number): Promise<NodeRecord[]>;

  /** A tentacle connected to this node (idempotent). */
  addLink(node: string, thumbprint: string, carrier: string): Promise<void>;
  /** Its last connection to this node closed. */
  removeLink(node: string, thumbprint: string): Promise<void>;
  /** addLink for many tentacles in one statement (a reconnect burst); one entry per thumbprint. */
  addLinks(node: string, links: readonly { thumbprint: string; carrier: string }[]): Promise<void>;
  /** removeLink for many tentacles in one statement. */
  removeLinks(node: string, thumbprints: readonly string[]): Promise<void>;
  /** Every tentacle connection held by a live node. */
  listLinks(staleAfterMs: number): Promise<TentacleLink[]>;
  /** Live nodes (heartbeat fresh, not stopped) that hold a connection from this tentacle. */
  linkHolders(thumbprint: string, staleAfterMs: number): Promise<string[]>;

  /**
   * Claims unfinished task machines of unfinished tasks that nobody holds a live lease on
   * and that this node can work on:
   * - the task was cancelled (anyone can record that), or the machine was deleted;
   * - the machine is listening (any node can dial it);
   * - its tentacle is connected to this node;
   * - its tentacle is connected to no live node (this node waits for it, up to the pickup
   *   timeout, and hands it over if it turns up elsewhere).
   * Oldest tasks first. Concurrent claims from several nodes never return the same row.
   */
  claimWork(node: string, options: ClaimOptions): Promise<WorkKey[]>;
  /** Extends the lease of everything the node owns and is unfinished; returns what it owns. */
  renewLeases(node: string, leaseMs: number): Promise<WorkKey[]>;
  /** Gives up ownership (handover, shutdown). false if the node did not own it. */
  releaseWork(node: string, work: WorkKey): Promise<boolean>;
  /** Task machines of this task that are not final yet. */
  unfinishedMachines(taskId: string): Promise<number>;

  /**
   * A value every node must share: stores `proposed` if the key has none yet, then returns
   * the stored value (the first node's proposal wins).
   */
  sharedSetting(key: string, proposed: string): Promise<string>;
  /** The stored value, or null. */
  getSharedSetting(key: string): Promise<string | null>;
  /** Replaces the value every node shares (a completed certificate rotation); stores it if there was none. */
  replaceSharedSetting(key: string, value: string): Promise<void>;
}

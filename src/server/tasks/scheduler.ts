import { randomUUID } from 'node:crypto';
import type { CommsServer } from '../../comms/index.js';
import type { Logger } from '../../logging.js';
import type { ClusterBus } from '../cluster/bus.js';
import type { Coordination, WorkKey } from '../store/coordination.js';
import type { JsonObject } from '../store/types.js';

export interface ClusterTiming {
  /** Node heartbeat and lease renewal. */
  heartbeatMs: number;
  /** A claim lapses this long after its last renewal: the takeover time after a node dies. */
  leaseMs: number;
  /** A node silent for this long is dead; its tentacle links no longer count. */
  staleAfterMs: number;
  /** How often the store is swept for claimable work and runs to hand over. */
  sweepMs: number;
}

const DEFAULT_CLUSTER_TIMING: ClusterTiming = { heartbeatMs: 5000, leaseMs: 20_000, staleAfterMs: 15_000, sweepMs: 2000 };

/** Why a run stopped without an outcome (it resumes wherever it is claimed next). */
export type StopReason = 'closing' | 'handover' | 'lease-lost';

/** One machine's part of a task running on this node. */
export interface LocalRun {
  key: WorkKey;
  /** The tentacle's thumbprint when the server waits for it to poll; null for listening. */
  pollingThumbprint: string | null;
  /** Aborted when the task is cancelled. */
  readonly cancel: AbortController;
  /** Aborted when this node must stop working on it without recording anything. */
  readonly stop: AbortController;
  stopReason?: StopReason;
}

export interface SchedulerOptions {
  coordination: Coordination;
  comms: CommsServer;
  bus: ClusterBus;
  logger: Logger;
  node: { name: string; info: JsonObject };
  timing?: Partial<ClusterTiming>;
  /** Runs claimed work; registers each run with `track` before its first await. */
  launch(claimed: WorkKey[]): Promise<void>;
}

const CLAIM_BATCH = 200;
const keyOf = (work: WorkKey) => `${work.taskId}\u0000${work.machineId}`;

/**
 * Decides which work this node does. Work for a polling tentacle runs on a node it is
 * connected to; each run is held under a lease that this node renews while it works, so
 * if the node dies another one takes the work over once the lease lapses. Runs waiting
 * for a tentacle that has connected to another node are handed over to it.
 *
 * Triggers: a task created here or announced on the bus, a tentacle connecting, and a
 * sweep every `sweepMs` (which alone would be enough: the bus only makes it prompt).
 */
export class WorkScheduler {
  readonly timing: ClusterTiming;
  readonly incarnation = randomUUID();
  private readonly runs = new Map<string, LocalRun>();
  private claiming: Promise<void> | null = null;
  private claimAgain = false;
  private timers: NodeJS.Timeout[] = [];
  private lastRenewal = Date.now();
  private stopped = false;

  constructor(private readonly options: SchedulerOptions) {
    this.timing = { ...DEFAULT_CLUSTER_TIMING, ...options.timing };
  }

  get nodeName(): string {
    return this.options.node.name;
  }

  /** Machine parts this node works on now. */
  get activeRuns(): number {
    return this.runs.size;
  }

  /** Since this node last renewed its leases (a store that does not answer makes it grow towards leaseMs). */
  get msSinceRenewal(): number {
    return Date.now() - this.lastRenewal;
  }

  async start(): Promise<void> {
    const { coordination, node } = this.options;
    await coordination.joinNode({ name: node.name, incarnation: this.incarnation, info: node.info });
    this.lastRenewal = Date.now();
    this.timers.push(
      setInterval(() => void this.heartbeat(), this.timing.heartbeatMs),
      setInterval(() => {
        void this.handOverStrandedRuns();
        this.claimSoon();
      }, this.timing.sweepMs),
    );
    for (const timer of this.timers) timer.unref();
    this.claimSoon();
  }

  /** Records what the node shows about itself (its ports, once listening) now. */
  async announce(info: JsonObject): Promise<void> {
    Object.assign(this.options.node.info, info);
    await this.heartbeat();
  }

  /** Stops claiming and stops every run; the caller waits for them, then calls `leave`. */
  stopAll(): void {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    for (const run of this.runs.values()) this.stopRun(run, 'closing');
  }

  /** Leaves the cluster cleanly: links dropped, claims released for the others. */
  async leave(): Promise<void> {
    await this.options.coordination.leaveNode(this.nodeName);
    this.options.bus.publish({ kind: 'work' });
  }

  /** Registers a run this node now works on; returns null if it already runs here. */
  track(key: WorkKey, pollingThumbprint: string | null): LocalRun | null {
    if (this.runs.has(keyOf(key))) return null;
    const run: LocalRun = { key, pollingThumbprint, cancel: new AbortController(), stop: new AbortController() };
    this.runs.set(keyOf(key), run);
    return run;
  }

  /** The run ended (with an outcome, or stopped). A handed-over run is released at once. */
  async untrack(run: LocalRun): Promise<void> {
    this.runs.delete(keyOf(run.key));
    if (run.stopReason !== 'handover') return;
    await this.options.coordination.releaseWork(this.nodeName, run.key).catch((err: Error) => {
      this.options.logger.warn({ err: err.message, ...run.key }, 'cluster: releasing handed-over work failed; its lease will lapse');
    });
    this.options.bus.publish({ kind: 'work' });
  }

  isRunning(key: WorkKey): boolean {
    return this.runs.has(keyOf(key));
  }

  /** Aborts the local runs of a cancelled task (their outcome is then recorded as usual). */
  cancelLocal(taskId: string): void {
    for (const run of this.runs.values()) if (run.key.taskId === taskId) run.cancel.abort();
  }

  /** Claims whatever this node can do now; repeated calls while claiming coalesce. */
  claimSoon(): void {
    if (this.stopped) return;
    if (this.claiming) {
      this.claimAgain = true;
      return;
    }
    this.claiming = this.claimAll()
      .catch((err: Error) => this.options.logger.warn({ err: err.message }, 'cluster: claiming work failed; retrying at the next sweep'))
      .finally(() => {
        this.claiming = null;
        if (this.claimAgain) this.claimSoon();
      });
  }

  /** A tentacle connected to another node: runs here waiting for it may go there. */
  linkElsewhere(): void {
    void this.handOverStrandedRuns();
  }

  private async claimAll(): Promise<void> {
    const { coordination } = this.options;
    do {
      this.claimAgain = false;
      for (;;) {
        if (this.stopped) return;
        const claimed = await coordination.claimWork(this.nodeName, {
          leaseMs: this.timing.leaseMs,
          staleAfterMs: this.timing.staleAfterMs,
          limit: CLAIM_BATCH,
        });
        const fresh = claimed.filter((work) => !this.isRunning(work));
        if (fresh.length) await this.options.launch(fresh);
        if (claimed.length < CLAIM_BATCH) break;
      }
    } while (this.claimAgain);
  }

  private async heartbeat(): Promise<void> {
    const { coordination, logger } = this.options;
    try {
      if (!(await coordination.heartbeatNode(this.nodeName, this.incarnation, this.options.node.info))) {
        logger.error(
          { node: this.nodeName },
          `cluster: another server process joined as node "${this.nodeName}"; this one stops taking work. Give every node its own --node-name.`,
        );
        this.stopAll();
        return;
      }
      const owned = new Set((await coordination.renewLeases(this.nodeName, this.timing.leaseMs)).map(keyOf));
      this.lastRenewal = Date.now();
      for (const [key, run] of this.runs) {
        // Claimed by another node after our lease lapsed: it does the work now.
        if (!owned.has(key)) this.stopRun(run, 'lease-lost');
      }
    } catch (err) {
      const silentFor = Date.now() - this.lastRenewal;
      logger.warn({ err: (err as Error).message, silentForMs: silentFor }, 'cluster: renewing leases failed');
      // Stop before the lease can lapse, so two nodes never work on one run at once.
      if (silentFor >= this.timing.leaseMs - this.timing.heartbeatMs) {
        for (const run of this.runs.values()) this.stopRun(run, 'lease-lost');
      }
    }
  }

  /** Runs waiting for a tentacle that is connected to another live node go to that node. */
  private async handOverStrandedRuns(): Promise<void> {
    const { coordination, comms } = this.options;
    for (const run of [...this.runs.values()]) {
      const thumbprint = run.pollingThumbprint;
      if (!thumbprint || run.stop.signal.aborted || comms.links.pick(thumbprint)) continue;
      try {
        const holders = await coordination.linkHolders(thumbprint, this.timing.staleAfterMs);
        if (holders.some((node) => node !== this.nodeName)) {
          this.options.logger.info({ ...run.key, to: holders }, 'cluster: tentacle is connected to another node; handing the work over');
          this.stopRun(run, 'handover');
        }
      } catch (err) {
        this.options.logger.debug({ err: (err as Error).message }, 'cluster: handover check failed');
      }
    }
  }

  private stopRun(run: LocalRun, reason: StopReason): void {
    if (run.stop.signal.aborted) return;
    run.stopReason = reason;
    run.stop.abort();
  }
}

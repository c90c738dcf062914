/**
 * Every metric a server node exposes at /metrics, defined once here with its help text
 * (docs/operations.md lists them). Each node has a registry of its own, so several servers
 * in one process (tests, benchmarks) never mix their numbers; the process and Node.js
 * runtime metrics are the process's and come from one shared registry (process-metrics.ts).
 *
 * Cost at scrape time does not grow with the fleet beyond one pass over the live
 * connections: no label holds a machine, a thumbprint or a task id, and label values that
 * come from outside (error codes) are bounded (labels.ts). What is cheaper to read when
 * scraped than to count on a hot path (connections, calls in flight, waiting calls) is a
 * gauge computed in its `collect`.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PickupOutcome } from '../../comms/index.js';
import type { FinalState, TaskKind } from '../store/types.js';
import { errorCodeLabel, nameLabel } from './labels.js';
import { processMetrics } from './process-metrics.js';

/** What the node's gauges read when scraped. */
export interface MetricSources {
  /** Tentacles connected per carrier, and the calls in flight over their connections. */
  links(): { tentaclesByCarrier: ReadonlyMap<string, number>; inflight: number };
  /** Calls waiting for a polling Tentacle to connect. */
  waitingForPickup(): number;
  /** Machine parts of tasks this node works on now. */
  activeRuns(): number;
  /** Milliseconds since this node last renewed its work leases. */
  msSinceLeaseRenewal(): number;
  /** Answers the Tentacle contract refused (tentacle-client.ts; counted for the whole process). */
  invalidAnswers(): number;
  /** Comms connections accepted whose TLS handshake and verdict are not done yet (admission control). */
  handshakesInFlight?(): number;
}

const RPC_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const PICKUP_BUCKETS = [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600];
const TASK_BUCKETS = [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400];
const STORE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];
const BUS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly process = processMetrics();
  private sources: MetricSources | undefined;
  /** One pass over the connections per scrape, shared by the gauges that need it. */
  private linksOfThisScrape: ReturnType<MetricSources['links']> | undefined;
  private readonly carriers = nameLabel(16);
  private readonly reasons = nameLabel(32);
  private readonly methods = nameLabel(64);
  private readonly operations = nameLabel(128);
  private readonly errorCodes = errorCodeLabel();

  private readonly handshakes = this.counter('reef_tentacle_handshakes_total', 'Comms connections established with a Tentacle (accepted or dialled), by carrier.', ['carrier']);
  private readonly resumedHandshakes = this.counter(
    'reef_tentacle_handshakes_resumed_total',
    'Of reef_tentacle_handshakes_total, those that resumed an earlier TLS session (a session ticket) instead of a full handshake, by carrier.',
    ['carrier'],
  );
  private readonly refusals = this.counter(
    'reef_tentacle_handshake_refusals_total',
    'Tentacle connections turned away or failed before the link was up, by carrier and reason (the error code in lower case, e.g. untrusted_certificate).',
    ['carrier', 'reason'],
  );
  private readonly reconnects = this.counter(
    'reef_tentacle_reconnects_total',
    'Connections from a Tentacle that had connected before (to this node since it started, or to any node by its last-seen time), other than a second carrier beside a live one, by carrier.',
    ['carrier'],
  );
  private readonly rpcDuration = this.histogram('reef_rpc_call_duration_seconds', 'Calls to Tentacles, from sending to the answer or failure, by method.', ['method'], RPC_BUCKETS);
  private readonly rpcErrors = this.counter('reef_rpc_call_errors_total', 'Calls to Tentacles that failed, by method and error code.', ['method', 'code']);
  private readonly pickupWait = this.histogram(
    'reef_pickup_wait_seconds',
    'Waits of work for a polling Tentacle to connect, by how they ended (connected, timed_out, cancelled, shutdown).',
    ['outcome'],
    PICKUP_BUCKETS,
  );
  private readonly taskDuration = this.histogram(
    'reef_task_duration_seconds',
    'Tasks this node finished, from creation to final state, by kind and state.',
    ['kind', 'state'],
    TASK_BUCKETS,
  );
  private readonly machineDuration = this.histogram(
    'reef_task_machine_duration_seconds',
    "Machines' parts of tasks this node finished, from their start to final state, by task kind and state.",
    ['kind', 'state'],
    TASK_BUCKETS,
  );
  private readonly logLines = this.counter('reef_log_lines_stored_total', "Task log lines this node stored (Tentacle output and the server's own lines).", []);
  private readonly storeDuration = this.histogram(
    'reef_store_operation_duration_seconds',
    'Store operations (each one or a few SQL statements), from the call to its result, waiting for a connection included, by operation.',
    ['operation'],
    STORE_BUCKETS,
  );
  private readonly storeErrors = this.counter('reef_store_operation_errors_total', 'Store operations that failed, by operation.', ['operation']);

  private readonly nodeInfo = new Gauge({ name: 'reef_node_info', help: 'Always 1: this server node and its Reef version.', labelNames: ['version'], registers: [this.registry] });

  constructor() {
    const sources = () => this.sources;
    const links = () => (this.linksOfThisScrape ??= this.sources?.links());
    const carriers = this.carriers;
    new Gauge({
      name: 'reef_tentacles_connected',
      help: 'Tentacles connected to this node, by carrier (one connected over two carriers counts under each).',
      labelNames: ['carrier'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [carrier, count] of links()?.tentaclesByCarrier ?? []) this.set({ carrier: carriers.of(carrier) }, count);
      },
    });
    this.gauge('reef_rpc_calls_in_flight', 'Calls to Tentacles under way on this node.', () => links()?.inflight);
    this.gauge('reef_pickup_waiting', 'Calls waiting now for a polling Tentacle to connect.', () => sources()?.waitingForPickup());
    this.gauge(
      'reef_comms_handshakes_in_flight',
      'Tentacle connections accepted whose TLS handshake and verdict are not done yet (admission control: --max-handshakes-in-flight).',
      () => sources()?.handshakesInFlight?.(),
    );
    this.gauge('reef_task_machines_running', "Machines' parts of tasks this node works on now.", () => sources()?.activeRuns());
    this.gauge(
      'reef_cluster_lease_renewal_age_seconds',
      'Seconds since this node last renewed its work leases (renewed every heartbeat; work stops when it nears the lease time).',
      () => (sources()?.msSinceLeaseRenewal() ?? 0) / 1000,
    );
    new Counter({
      name: 'reef_rpc_invalid_answers_total',
      help: 'Tentacle answers refused by the RPC contract (the call failed with REEF_PROTOCOL_ERROR), in this process.',
      registers: [this.registry],
      collect() {
        const count = sources()?.invalidAnswers() ?? 0;
        this.reset();
        this.inc(count);
      },
    });
  }

  /**
   * Names the node (every reef_ series carries `node`, so a cluster's nodes stay apart
   * however they were scraped) and binds the gauges to its parts, once they exist.
   */
  bind(node: string, version: string, sources: MetricSources): void {
    this.registry.setDefaultLabels({ node });
    this.nodeInfo.set({ version }, 1);
    this.sources = sources;
  }

  handshake(carrier: string, resumed = false): void {
    this.handshakes.inc({ carrier: this.carriers.of(carrier) });
    if (resumed) this.resumedHandshakes.inc({ carrier: this.carriers.of(carrier) });
  }

  reconnect(carrier: string): void {
    this.reconnects.inc({ carrier: this.carriers.of(carrier) });
  }

  refusal(carrier: string, reason: string): void {
    this.refusals.inc({ carrier: this.carriers.of(carrier), reason: this.reasons.of(reason) });
  }

  rpcCall(method: string, seconds: number, errorCode: string | undefined): void {
    const label = this.methods.of(method);
    this.rpcDuration.observe({ method: label }, seconds);
    if (errorCode !== undefined) this.rpcErrors.inc({ method: label, code: this.errorCodes.of(errorCode) });
  }

  pickup(seconds: number, outcome: PickupOutcome): void {
    this.pickupWait.observe({ outcome }, seconds);
  }

  finished(of: 'task' | 'machine', kind: TaskKind, state: FinalState, seconds: number): void {
    (of === 'task' ? this.taskDuration : this.machineDuration).observe({ kind, state }, seconds);
  }

  logLinesStored(count: number): void {
    this.logLines.inc(count);
  }

  storeOperation(operation: string, seconds: number, failed: boolean): void {
    const label = this.operations.of(operation);
    this.storeDuration.observe({ operation: label }, seconds);
    if (failed) this.storeErrors.inc({ operation: label });
  }

  /** The cluster bus's metrics: only on a node that has a bus (PostgreSQL); returns what records them. */
  clusterBus(connected: () => boolean): { sent(events: number): void; received(events: number, lagMs: number | undefined): void; reconnected(): void } {
    this.gauge('reef_cluster_bus_connected', 'Whether the cluster notification connection to PostgreSQL is up (1) or being reopened (0).', () => (connected() ? 1 : 0));
    const notifications = this.counter('reef_cluster_bus_notifications_total', 'Cluster bus notifications this node sent or received, by direction.', ['direction']);
    const events = this.counter('reef_cluster_bus_events_total', 'Events in the cluster bus notifications this node sent or received, by direction.', ['direction']);
    const reconnects = this.counter('reef_cluster_bus_reconnects_total', 'Times the cluster notification connection was reopened after it was lost.', []);
    const lag = this.histogram(
      'reef_cluster_bus_lag_seconds',
      "Time from an event's publication on another node to its arrival here (batching, PostgreSQL and the network; by the two nodes' clocks).",
      [],
      BUS_BUCKETS,
    );
    // Present at 0 before the first notification, so an alert on rate() has a series.
    for (const direction of ['sent', 'received']) {
      notifications.inc({ direction }, 0);
      events.inc({ direction }, 0);
    }
    reconnects.inc(0);
    return {
      sent: (n) => {
        notifications.inc({ direction: 'sent' });
        events.inc({ direction: 'sent' }, n);
      },
      received: (n, lagMs) => {
        notifications.inc({ direction: 'received' });
        events.inc({ direction: 'received' }, n);
        if (lagMs !== undefined) lag.observe(lagMs / 1000);
      },
      reconnected: () => reconnects.inc(),
    };
  }

  /** The text a scrape gets: this node's metrics, then the process's. */
  async render(): Promise<string> {
    this.linksOfThisScrape = undefined;
    try {
      const [own, shared] = await Promise.all([this.registry.metrics(), this.process.metrics()]);
      return `${own}\n${shared}`;
    } finally {
      this.linksOfThisScrape = undefined;
    }
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  private histogram<L extends string>(name: string, help: string, labelNames: L[], buckets: number[]): Histogram<L> {
    return new Histogram({ name, help, labelNames, buckets, registers: [this.registry] });
  }

  /** A gauge without labels, read when scraped (0 until the node's parts are bound). */
  private gauge(name: string, help: string, read: () => number | undefined): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read() ?? 0);
      },
    });
  }
}

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

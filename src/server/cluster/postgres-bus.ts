import pg from 'pg';
import type { Logger } from '../../logging.js';
import { eventKey, type BusObserver, type ClusterBus, type ClusterEvent } from './bus.js';

const CHANNEL = 'reef_cluster';
/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. */
const MAX_PAYLOAD = 7000;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5000;

interface Envelope {
  /** Node name and incarnation of the sender: a node ignores its own notifications. */
  from: string;
  /** When the first of the events was published (sender's clock, ms since the epoch): for the bus lag metric. */
  at?: number;
  events: ClusterEvent[];
}

/**
 * The cluster bus on PostgreSQL LISTEN/NOTIFY, on one connection of its own (a pooled
 * connection cannot hold a LISTEN). Events are deduplicated and batched without waiting:
 * what is published in one tick goes out on the next, and what is published while a
 * NOTIFY is in flight goes out together right after it, so a busy node sends few large
 * notifications and an idle one adds no delay. When the
 * connection drops it is reopened with backoff and listeners get `resync`, since
 * notifications sent meanwhile are gone.
 */
export class PostgresBus implements ClusterBus {
  readonly #url: string;
  readonly #origin: string;
  readonly #logger: Logger;
  readonly #listeners: ((event: ClusterEvent | { kind: 'resync' }) => void)[] = [];
  readonly #pending = new Map<string, ClusterEvent>();
  /** When the oldest event in `#pending` was published. */
  #pendingSince = 0;
  readonly #observers: BusObserver[] = [];
  #client: pg.Client | null = null;
  /** A flush is scheduled or running; it drains `#pending` until it is empty. */
  #flushing: Promise<void> | null = null;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #reconnectDelay = RECONNECT_MIN_MS;
  #closed = false;

  private constructor(url: string, origin: string, logger: Logger) {
    this.#url = url;
    this.#origin = origin;
    this.#logger = logger;
  }

  /** Connects and listens; fails if the database cannot be reached now. */
  static async open(url: string, origin: string, logger: Logger): Promise<PostgresBus> {
    const bus = new PostgresBus(url, origin, logger);
    await bus.#connect();
    return bus;
  }

  publish(event: ClusterEvent): void {
    if (this.#closed) return;
    if (this.#pending.size === 0) this.#pendingSince = Date.now();
    this.#pending.set(eventKey(event), event);
    this.#scheduleFlush();
  }

  subscribe(listener: (event: ClusterEvent | { kind: 'resync' }) => void): void {
    this.#listeners.push(listener);
  }

  observe(observer: BusObserver): void {
    this.#observers.push(observer);
  }

  get connected(): boolean {
    return this.#client !== null;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#flushing;
    this.#closed = true;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url, application_name: 'reef-bus' });
    client.on('notification', (message) => this.#receive(message.payload));
    client.on('error', (err) => this.#lost(client, err));
    client.on('end', () => this.#lost(client));
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    this.#client = client;
    this.#reconnectDelay = RECONNECT_MIN_MS;
  }

  #lost(client: pg.Client, err?: Error): void {
    if (this.#client !== client || this.#closed) return;
    this.#client = null;
    client.end().catch(() => undefined);
    this.#logger.warn({ err: err?.message }, 'cluster: notification connection lost; reconnecting');
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#reconnectTimer) return;
    const delay = this.#reconnectDelay;
    this.#reconnectDelay = Math.min(RECONNECT_MAX_MS, delay * 2);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      this.#connect().then(
        () => {
          this.#logger.info('cluster: notification connection restored');
          for (const observer of this.#observers) observer.reconnected();
          this.#deliver({ kind: 'resync' });
        },
        (err: Error) => {
          this.#logger.debug({ err: err.message }, 'cluster: reconnecting the notification connection failed');
          this.#scheduleReconnect();
        },
      );
    }, delay);
  }

  #receive(payload: string | undefined): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(payload ?? '') as Envelope;
    } catch {
      this.#logger.warn('cluster: ignored a notification that is not JSON');
      return;
    }
    if (envelope.from === this.#origin || !Array.isArray(envelope.events)) return;
    const lagMs = typeof envelope.at === 'number' && Number.isFinite(envelope.at) ? Math.max(0, Date.now() - envelope.at) : undefined;
    for (const observer of this.#observers) observer.received(envelope.events.length, lagMs);
    for (const event of envelope.events) this.#deliver(event);
  }

  #deliver(event: ClusterEvent | { kind: 'resync' }): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        this.#logger.error({ err }, 'cluster: event listener failed');
      }
    }
  }

  #scheduleFlush(): void {
    if (this.#flushing || this.#pending.size === 0) return;
    this.#flushing = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#drain())
      .finally(() => {
        this.#flushing = null;
        this.#scheduleFlush(); // published between the drain's end and now
      });
  }

  async #drain(): Promise<void> {
    while (this.#pending.size > 0) {
      const events = [...this.#pending.values()];
      const since = this.#pendingSince;
      this.#pending.clear();
      const client = this.#client;
      // No connection: the other nodes' sweeps find the work anyway.
      if (!client) return;
      for (const payload of payloads(this.#origin, events, since)) {
        await client.query('SELECT pg_notify($1, $2)', [CHANNEL, payload.text]).then(
          () => {
            for (const observer of this.#observers) observer.sent(payload.events);
          },
          (err: Error) => this.#logger.debug({ err: err.message }, 'cluster: NOTIFY failed'),
        );
      }
    }
  }
}

/** Splits events, the first published at `at`, into envelopes that each fit in one NOTIFY payload. */
export function payloads(origin: string, events: ClusterEvent[], at = Date.now()): { text: string; events: number }[] {
  const out: { text: string; events: number }[] = [];
  const overhead = Buffer.byteLength(JSON.stringify({ from: origin, at, events: [] } satisfies Envelope));
  let batch: string[] = [];
  let size = overhead;
  const flush = () => out.push({ text: `{"from":${JSON.stringify(origin)},"at":${at},"events":[${batch.join(',')}]}`, events: batch.length });
  for (const event of events) {
    const encoded = JSON.stringify(event);
    const added = Buffer.byteLength(encoded) + (batch.length ? 1 : 0);
    if (batch.length && size + added > MAX_PAYLOAD) {
      flush();
      batch = [];
      size = overhead;
    }
    size += Buffer.byteLength(encoded) + (batch.length ? 1 : 0);
    batch.push(encoded);
  }
  if (batch.length) flush();
  return out;
}

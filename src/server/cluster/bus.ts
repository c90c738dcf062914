/**
 * Tells the other server nodes that something happened, so they act at once instead of at
 * their next sweep. Only a hint: every node also sweeps the store on a timer, so a lost
 * notification delays work, it never loses it.
 */
export type ClusterEvent =
  /** Work became claimable: a task was created, a lease released. */
  | { kind: 'work' }
  /** A task was cancelled: nodes running part of it stop. */
  | { kind: 'cancel'; taskId: string }
  /** New log lines of a task were stored. */
  | { kind: 'log'; taskId: string }
  /** A task or one of its machines changed state. */
  | { kind: 'changed'; taskId: string }
  /** A tentacle connected to the sending node. */
  | { kind: 'link'; thumbprint: string }
  /** A server certificate rotation started or completed: nodes re-read it (and switch certificate). */
  | { kind: 'certificate' }
  /** Which machine a Tentacle thumbprint belongs to changed (registered, deleted): nodes re-read it (trust-cache.ts). */
  | { kind: 'trust'; thumbprint: string }
  /** The comms TLS session-ticket keys were rotated: nodes re-read them (ticket-keys.ts). */
  | { kind: 'ticket-keys' }
  /** A Tentacle certificate rotation revoked this thumbprint: nodes close its live links. */
  | { kind: 'revoked'; thumbprint: string };

export interface ClusterBus {
  /** Queued and sent in batches; never throws. */
  publish(event: ClusterEvent): void;
  /**
   * Events from other nodes. `resync` after the bus was disconnected: notifications may
   * have been missed, so listeners should re-read what they show.
   */
  subscribe(listener: (event: ClusterEvent | { kind: 'resync' }) => void): void;
  /** Reports what the bus does (for metrics); absent where there is no bus (LocalBus). */
  observe?(observer: BusObserver): void;
  /** Whether notifications can be sent and received now; absent where there is no bus. */
  readonly connected?: boolean;
  close(): Promise<void>;
}

/** What a bus reports to its observer. */
export interface BusObserver {
  /** A notification went out carrying this many events. */
  sent(events: number): void;
  /**
   * A notification from another node arrived, `lagMs` after the first of its events was
   * published there (by the two nodes' clocks; undefined from a node that does not say).
   */
  received(events: number, lagMs: number | undefined): void;
  /** The notification connection was restored after it was lost. */
  reconnected(): void;
}

/** One node alone (the embedded SQLite store): there is nobody to tell. */
export class LocalBus implements ClusterBus {
  publish(): void {}
  subscribe(): void {}
  async close(): Promise<void> {}
}

/** A stable key per event, so a batch sends each event once. */
export function eventKey(event: ClusterEvent): string {
  switch (event.kind) {
    case 'work':
    case 'certificate':
    case 'ticket-keys':
      return event.kind;
    case 'link':
    case 'trust':
    case 'revoked':
      return `${event.kind}:${event.thumbprint}`;
    default:
      return `${event.kind}:${event.taskId}`;
  }
}

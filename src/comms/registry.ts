import type { Thumbprint } from '../pki/thumbprint.js';
import type { RpcClient } from './rpc/client.js';

/**
 * The server's live connections, per tentacle thumbprint. A tentacle may hold several
 * (one per carrier, or briefly two while it reconnects); calls go to the least busy.
 */
export class LinkRegistry {
  private readonly links = new Map<Thumbprint, Set<RpcClient>>();
  private readonly waiters = new Map<Thumbprint, Set<(client: RpcClient) => void>>();
  private readonly lastSeen = new Map<Thumbprint, Date>();

  add(client: RpcClient): void {
    const tp = client.peer.thumbprint;
    let set = this.links.get(tp);
    if (!set) this.links.set(tp, (set = new Set()));
    set.add(client);
    this.lastSeen.set(tp, new Date());
    const waiting = this.waiters.get(tp);
    if (waiting) {
      this.waiters.delete(tp);
      for (const wake of waiting) wake(client);
    }
  }

  remove(client: RpcClient): void {
    const tp = client.peer.thumbprint;
    const set = this.links.get(tp);
    if (!set?.delete(client)) return;
    if (set.size === 0) this.links.delete(tp);
    this.lastSeen.set(tp, new Date());
  }

  /** The open connection with the fewest calls in flight, if any. */
  pick(thumbprint: Thumbprint): RpcClient | undefined {
    let best: RpcClient | undefined;
    for (const client of this.links.get(thumbprint) ?? []) {
      if (client.isOpen && (!best || client.inflight < best.inflight)) best = client;
    }
    return best;
  }

  /** Resolves with a connection once `thumbprint` connects, or null after `timeoutMs` or on abort. */
  waitFor(thumbprint: Thumbprint, timeoutMs: number, signal?: AbortSignal): Promise<RpcClient | null> {
    const ready = this.pick(thumbprint);
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => {
      let set = this.waiters.get(thumbprint);
      if (!set) this.waiters.set(thumbprint, (set = new Set()));
      const done = (client: RpcClient | null) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        set!.delete(wake);
        if (set!.size === 0 && this.waiters.get(thumbprint) === set) this.waiters.delete(thumbprint);
        resolve(client);
      };
      const wake = (client: RpcClient) => done(client);
      const onAbort = () => done(null);
      const timer = setTimeout(() => done(null), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      set.add(wake);
    });
  }

  connections(thumbprint: Thumbprint): RpcClient[] {
    return [...(this.links.get(thumbprint) ?? [])];
  }

  all(): RpcClient[] {
    return [...this.links.values()].flatMap((set) => [...set]);
  }

  lastSeenAt(thumbprint: Thumbprint): Date | undefined {
    return this.links.has(thumbprint) ? new Date() : this.lastSeen.get(thumbprint);
  }

  /** Calls waiting for a tentacle to connect. */
  get waiting(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  /**
   * Tentacles connected per carrier (one with connections on two carriers counts under
   * each) and the calls in flight over every connection: one pass, for metrics.
   */
  census(): { tentaclesByCarrier: Map<string, number>; inflight: number } {
    const tentaclesByCarrier = new Map<string, number>();
    const count = (carrier: string) => tentaclesByCarrier.set(carrier, (tentaclesByCarrier.get(carrier) ?? 0) + 1);
    let inflight = 0;
    for (const set of this.links.values()) {
      let first: string | undefined;
      let others: Set<string> | undefined;
      for (const client of set) {
        inflight += client.inflight;
        const carrier = client.peer.carrier;
        if (first === undefined) first = carrier;
        else if (carrier !== first) (others ??= new Set()).add(carrier);
      }
      if (first !== undefined) count(first);
      others?.forEach(count);
    }
    return { tentaclesByCarrier, inflight };
  }

  get size(): number {
    let n = 0;
    for (const set of this.links.values()) n += set.size;
    return n;
  }
}

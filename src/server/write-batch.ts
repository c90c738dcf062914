/**
 * Store writes gathered by key and written together: during a reconnect burst thousands
 * of Tentacles connect within seconds, and one statement per Tentacle (its presence row,
 * its last contact) was a visible part of the server's CPU per new connection. Entries
 * set in the same turn of the event loop, or while the previous write is under way, go in
 * the next write; the latest value of a key wins (`merge` may combine it with the one it
 * replaces). One write at a time, in order, so a key's writes never overtake each other.
 */
export class WriteBatch<V> {
  private pending = new Map<string, V>();
  private waiters: (() => void)[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly write: (entries: ReadonlyMap<string, V>) => Promise<void>,
    /** A failed write is reported here; its entries are not retried (the next contact writes again). */
    private readonly onError: (err: unknown, entries: number) => void,
    private readonly merge: (next: V, previous: V) => V = (next) => next,
  ) {}

  /** Resolves once the write carrying this entry is done (whether it succeeded or was reported). */
  set(key: string, value: V): Promise<void> {
    const previous = this.pending.get(key);
    this.pending.delete(key); // keeps the order of the latest setting
    this.pending.set(key, previous === undefined ? value : this.merge(value, previous));
    const done = new Promise<void>((resolve) => this.waiters.push(resolve));
    this.running ??= this.drain().finally(() => (this.running = undefined));
    return done;
  }

  /** Resolves once everything set so far is written. */
  async flushed(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    // Let the connections accepted in this turn of the event loop join the first write.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.pending.size > 0) {
      const entries = this.pending;
      const waiters = this.waiters;
      this.pending = new Map();
      this.waiters = [];
      try {
        await this.write(entries);
      } catch (err) {
        this.onError(err, entries.size);
      }
      for (const resolve of waiters) resolve();
    }
  }
}

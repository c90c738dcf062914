/**
 * One ticket's directory is changed by several parties: status reads (which may load it
 * from disk), the server's completion (which empties it), the retention sweep (which
 * removes it) and recovery. Each of these runs under its ticket's lock, one after the
 * other, so a reader never sees a directory half emptied and a load never brings back a
 * ticket completed meanwhile. Short critical sections only: nothing that waits on a
 * script (a long poll, a cancel's grace period) holds the lock.
 */
export class TicketLocks {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs `fn` once every earlier holder of `ticket`'s lock is done. */
  async with<T>(ticket: string, fn: () => Promise<T>): Promise<T> {
    const before = this.tails.get(ticket) ?? Promise.resolve();
    const mine = before.catch(() => undefined).then(fn);
    const tail = mine.catch(() => undefined);
    this.tails.set(ticket, tail);
    try {
      return await mine;
    } finally {
      // The last holder leaves no entry behind: the map holds only tickets in use.
      if (this.tails.get(ticket) === tail) this.tails.delete(ticket);
    }
  }

  /** Settles once every holder so far is done (used when closing). */
  async idle(): Promise<void> {
    await Promise.all([...this.tails.values()]);
  }
}

import type { Logger } from '../../logging.js';
import type { Coordination } from '../store/coordination.js';
import { WriteBatch } from '../write-batch.js';

/**
 * Keeps the store's record of which tentacles are connected to this node: a row when the
 * first connection from a tentacle opens, gone when its last one closes (a reconnecting
 * tentacle briefly has two). Writes are batched (write-batch.ts): a reconnect burst
 * records its tentacles in a few statements, and a tentacle's writes stay in order.
 */
export class LinkPresence {
  private readonly counts = new Map<string, number>();
  /** Per thumbprint, the carrier to record, or null for "gone". */
  private readonly writes: WriteBatch<string | null>;

  constructor(
    private readonly coordination: Coordination,
    private readonly node: string,
    logger: Logger,
  ) {
    this.writes = new WriteBatch(
      (entries) => this.write(entries),
      (err, tentacles) => logger.warn({ err: (err as Error).message, tentacles }, 'cluster: recording tentacle links failed'),
    );
  }

  /** Resolves once the store knows (work for it can then be claimed here). */
  connected(thumbprint: string, carrier: string): Promise<void> {
    this.counts.set(thumbprint, (this.counts.get(thumbprint) ?? 0) + 1);
    // A second connection may bring a new carrier: record it too.
    return this.writes.set(thumbprint, carrier);
  }

  disconnected(thumbprint: string): Promise<void> {
    const count = (this.counts.get(thumbprint) ?? 1) - 1;
    if (count > 0) {
      this.counts.set(thumbprint, count);
      return this.writes.flushed();
    }
    this.counts.delete(thumbprint);
    return this.writes.set(thumbprint, null);
  }

  private async write(entries: ReadonlyMap<string, string | null>): Promise<void> {
    const added: { thumbprint: string; carrier: string }[] = [];
    const removed: string[] = [];
    for (const [thumbprint, carrier] of entries) {
      if (carrier !== null) added.push({ thumbprint, carrier });
      // Reconnected while the removal waited its turn: keep the row.
      else if (!this.counts.has(thumbprint)) removed.push(thumbprint);
    }
    await this.coordination.addLinks(this.node, added);
    await this.coordination.removeLinks(this.node, removed);
  }
}

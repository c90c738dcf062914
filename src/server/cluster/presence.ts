import type { Logger } from '../../logging.js';
import type { Coordination } from '../store/coordination.js';

/**
 * Keeps the store's record of which tentacles are connected to this node: a row when the
 * first connection from a tentacle opens, gone when its last one closes (a reconnecting
 * tentacle briefly has two). Writes for one tentacle happen in order.
 */
export class LinkPresence {
  private readonly counts = new Map<string, number>();
  private readonly queues = new Map<string, Promise<void>>();

  constructor(
    private readonly coordination: Coordination,
    private readonly node: string,
    private readonly logger: Logger,
  ) {}

  /** Resolves once the store knows (work for it can then be claimed here). */
  connected(thumbprint: string, carrier: string): Promise<void> {
    const count = (this.counts.get(thumbprint) ?? 0) + 1;
    this.counts.set(thumbprint, count);
    // A second connection may bring a new carrier: record it too.
    return this.enqueue(thumbprint, () => this.coordination.addLink(this.node, thumbprint, carrier));
  }

  disconnected(thumbprint: string): Promise<void> {
    const count = (this.counts.get(thumbprint) ?? 1) - 1;
    if (count > 0) {
      this.counts.set(thumbprint, count);
      return this.queues.get(thumbprint) ?? Promise.resolve();
    }
    this.counts.delete(thumbprint);
    return this.enqueue(thumbprint, async () => {
      // Reconnected while the removal waited its turn: keep the row.
      if (!this.counts.has(thumbprint)) await this.coordination.removeLink(this.node, thumbprint);
    });
  }

  private enqueue(thumbprint: string, write: () => Promise<void>): Promise<void> {
    const previous = this.queues.get(thumbprint) ?? Promise.resolve();
    const next = previous
      .then(write)
      .catch((err: Error) => this.logger.warn({ err: err.message, thumbprint }, 'cluster: recording a tentacle link failed'));
    this.queues.set(thumbprint, next);
    void next.then(() => {
      if (this.queues.get(thumbprint) === next) this.queues.delete(thumbprint);
    });
    return next;
  }
}

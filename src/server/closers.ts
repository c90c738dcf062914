import { errorMessage } from '../errors.js';
import type { Logger } from '../logging.js';

/**
 * What a start-up opened, each with its closer, so that whether start-up fails half-way or
 * the node stops later, everything opened is closed newest first (listeners before the
 * engine, the engine before comms, the store last) and nothing keeps the process alive.
 */
export class Closers {
  private readonly stack: { what: string; close: () => unknown }[] = [];

  constructor(private readonly logger: Logger) {}

  /** Registers the closer of something just opened. */
  add(what: string, close: () => unknown): void {
    this.stack.push({ what, close });
  }

  /**
   * Runs every closer, newest first, each once. A closer that fails is logged and the rest
   * still run: the process must not be left holding the store because the bus failed.
   */
  async closeAll(): Promise<void> {
    for (let entry = this.stack.pop(); entry; entry = this.stack.pop()) {
      try {
        await entry.close();
      } catch (err) {
        this.logger.warn({ err: errorMessage(err) }, `closing the ${entry.what} failed; closing the rest`);
      }
    }
  }
}

import { setTimeout as sleep } from 'node:timers/promises';
import type { MachineRun } from '../machine-run.js';

/**
 * At most N holders per key at once (a task's maxParallel): the machine runs of one task
 * on this server node take turns. Waiting is polled (a free turn is seen within 200 ms),
 * which keeps the bookkeeping to one counter per key.
 */
export class Slots {
  private readonly held = new Map<string, number>();

  /** Waits for a turn under `key`; resolves with the function that gives it back. */
  async take(key: string, limit: number, signal: AbortSignal, onWait: () => unknown): Promise<() => void> {
    let waited = false;
    while ((this.held.get(key) ?? 0) >= limit) {
      if (!waited) {
        waited = true;
        await onWait();
      }
      await sleep(200, undefined, { signal });
    }
    this.held.set(key, (this.held.get(key) ?? 0) + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const left = (this.held.get(key) ?? 1) - 1;
      if (left > 0) this.held.set(key, left);
      else this.held.delete(key);
    };
  }

  /**
   * Runs `work` for one machine of a fleet operation once it has a turn among the task's
   * `limit` (its maxParallel); the run's log says when it waits.
   */
  async during<T>(run: MachineRun, limit: number, doing: string, work: () => Promise<T>): Promise<T> {
    const giveBack = await this.take(run.task.id, limit, run.signal, () => run.log('info', `Waiting for a turn: at most ${limit} machines of this task ${doing} at once.`));
    try {
      return await work();
    } finally {
      giveBack();
    }
  }
}

/** The turns of every fleet operation's machine runs on this node, by task (task ids are unique across kinds). */
export const fleetTurns = new Slots();

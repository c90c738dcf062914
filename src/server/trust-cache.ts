import type { Logger } from '../logging.js';
import { normalizeThumbprint, type Thumbprint } from '../pki/thumbprint.js';
import type { ClusterBus } from './cluster/bus.js';
import type { Machine, Store } from './store/types.js';

/**
 * The Tentacle thumbprints the server trusts, in memory: the comms acceptor asks on every
 * new connection, and a store read per connection cost CPU on a reconnect burst (and, by
 * the machine lookup's temporary b-trees, memory per link: docs/performance.md "fleet").
 * Filled by one store query at the start, kept current by the machine changes this
 * process makes (through `watch`) and by other nodes' changes announced on the cluster bus
 * (`trust` events), and re-read whole after the bus was lost (`resync`) and every few
 * minutes (a notification is only a hint).
 *
 * A thumbprint not found here is looked up in the store before it is refused: a Tentacle
 * registered on another node may connect here before that node's notification arrives.
 */
export class TrustCache {
  /** Thumbprint → id of the machine it belongs to. */
  private machines = new Map<Thumbprint, string>();
  private timer: NodeJS.Timeout | undefined;
  private bus: ClusterBus | undefined;
  /**
   * Per reload under way, the thumbprints changed meanwhile: its query may have run before
   * those changes, so for them the entries in memory win over what it read.
   */
  private readonly reloads = new Set<Set<Thumbprint>>();

  constructor(
    private readonly store: Pick<Store, 'listMachines' | 'getMachineByThumbprint' | 'getMachineByNextThumbprint'>,
    private readonly logger: Logger,
    /** Called when a thumbprint stops being trusted because of another node's change: live links go. */
    private readonly onRevoked: (thumbprint: Thumbprint) => void = () => {},
  ) {}

  /**
   * Takes every machine (read by the caller, or here); then follows `bus` and re-reads
   * everything every `refreshMs`.
   */
  async start(bus: ClusterBus, machines?: readonly Machine[], refreshMs = 5 * 60_000): Promise<void> {
    if (machines) this.machines = thumbprintsOf(machines);
    else await this.reload();
    bus.subscribe((event) => {
      if (event.kind === 'trust') void this.refresh(event.thumbprint, true);
      else if (event.kind === 'resync') void this.reload();
    });
    this.timer = setInterval(() => void this.reload(), refreshMs);
    this.timer.unref();
    this.bus = bus;
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Whether a Tentacle presenting `thumbprint` may connect. */
  async trusts(thumbprint: Thumbprint): Promise<boolean> {
    if (this.machines.has(thumbprint)) return true;
    return this.refresh(thumbprint, false);
  }

  /** The machine id `thumbprint` belongs to, as far as this cache knows. */
  machineOf(thumbprint: Thumbprint): string | undefined {
    return this.machines.get(thumbprint);
  }

  get size(): number {
    return this.machines.size;
  }

  /**
   * The store with the machine changes that affect trust followed: each updates this cache
   * before it resolves (so a deleted machine's reconnect is refused at once) and is
   * announced to the other nodes.
   */
  watch<S extends Store>(store: S): S {
    return {
      ...store,
      createMachine: async (input) => {
        const machine = await store.createMachine(input);
        this.changed(machine);
        return machine;
      },
      upsertMachine: async (input) => {
        const result = await store.upsertMachine(input);
        // A re-registration may have moved the name to another certificate: the old one goes.
        const current = trustedThumbprints(result.machine);
        for (const [thumbprint, id] of this.machines) if (id === result.machine.id && !current.includes(thumbprint)) this.forget(thumbprint);
        this.changed(result.machine);
        return result;
      },
      // A Tentacle certificate rotation (machine-certificates.ts): the next thumbprint is
      // trusted once recorded, and the one it replaces stops being trusted once promoted.
      setNextThumbprint: async (machineId, thumbprint) => {
        const machine = await store.setNextThumbprint(machineId, thumbprint);
        this.changed(machine);
        return machine;
      },
      promoteNextThumbprint: async (machineId, thumbprint) => {
        const promoted = await store.promoteNextThumbprint(machineId, thumbprint);
        if (promoted) {
          this.forget(promoted.previous);
          this.changed(promoted.machine);
        }
        return promoted;
      },
      deleteMachine: async (idOrName) => {
        const machine = await store.getMachine(idOrName);
        const deleted = await store.deleteMachine(idOrName);
        if (machine) for (const thumbprint of trustedThumbprints(machine)) this.forget(thumbprint);
        return deleted;
      },
    };
  }

  /** Re-reads every machine (one query). */
  async reload(): Promise<void> {
    const changedMeanwhile = new Set<Thumbprint>();
    this.reloads.add(changedMeanwhile);
    try {
      const next = thumbprintsOf(await this.store.listMachines());
      for (const thumbprint of changedMeanwhile) {
        const id = this.machines.get(thumbprint);
        if (id === undefined) next.delete(thumbprint);
        else next.set(thumbprint, id);
      }
      const revoked = [...this.machines.keys()].filter((thumbprint) => !next.has(thumbprint));
      this.machines = next;
      for (const thumbprint of revoked) this.onRevoked(thumbprint);
    } catch (err) {
      this.logger.warn({ err }, 'could not re-read the trusted Tentacle thumbprints; the ones in memory stay in use');
    } finally {
      this.reloads.delete(changedMeanwhile);
    }
  }

  /** Re-reads one thumbprint; `announced` when another node said it changed. */
  private async refresh(thumbprint: Thumbprint, announced: boolean): Promise<boolean> {
    let machine: Machine | null;
    try {
      machine = (await this.store.getMachineByThumbprint(thumbprint)) ?? (await this.store.getMachineByNextThumbprint(thumbprint));
    } catch (err) {
      if (announced) this.logger.warn({ err, thumbprint }, 'could not re-read a Tentacle thumbprint another node changed');
      throw err;
    }
    const key = normalizeThumbprint(thumbprint);
    this.noteChange(key);
    if (machine && trustedThumbprints(machine).includes(key)) {
      this.machines.set(key, machine.id);
      return true;
    }
    if (this.machines.delete(key) && announced) this.onRevoked(key);
    return false;
  }

  private changed(machine: Machine): void {
    for (const thumbprint of trustedThumbprints(machine)) {
      this.noteChange(thumbprint);
      this.machines.set(thumbprint, machine.id);
      this.bus?.publish({ kind: 'trust', thumbprint });
    }
  }

  private forget(thumbprint: Thumbprint): void {
    this.noteChange(thumbprint);
    this.machines.delete(thumbprint);
    this.bus?.publish({ kind: 'trust', thumbprint });
  }

  private noteChange(thumbprint: Thumbprint): void {
    for (const changedMeanwhile of this.reloads) changedMeanwhile.add(thumbprint);
  }
}

function thumbprintsOf(machines: readonly Machine[]): Map<Thumbprint, string> {
  const map = new Map<Thumbprint, string>();
  for (const machine of machines) for (const thumbprint of trustedThumbprints(machine)) map.set(thumbprint, machine.id);
  return map;
}

/**
 * The certificates a machine's Tentacle may connect with: its own, and during a Tentacle
 * certificate rotation the next one it was told to make (machine-certificates.ts).
 */
export function trustedThumbprints(machine: Machine): Thumbprint[] {
  return machine.nextThumbprint ? [machine.thumbprint, machine.nextThumbprint] : [machine.thumbprint];
}

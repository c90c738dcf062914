/**
 * Failed-attempt limits per remote address (API keys, portal sign-in), counted BEFORE the
 * work. admit() is synchronous: it checks and reserves a slot in one step, so N parallel
 * attempts from one address cannot all pass the check before any of them is recorded
 * (300 parallel wrong sign-ins used to be evaluated in full against a limit of 10). A
 * reserved slot counts as a failure until the attempt ends; a success gives it back.
 */

export interface FailureLimiterOptions {
  /** Failures (and attempts in progress) allowed per address within the window. Default 20. */
  maxFailures?: number;
  /** Default 60 s. */
  windowMs?: number;
  /** Addresses remembered at once; the stalest are forgotten first. Default 10000. */
  maxAddresses?: number;
  now?: () => number;
}

/** One admitted attempt. Exactly one of the three ends it; later calls do nothing. */
export interface AttemptSlot {
  /** The credentials were right: the slot is given back. */
  succeeded(): void;
  /** The credentials were wrong: the slot becomes a failure for the window. */
  failed(): void;
  /** The attempt was not evaluated (refused earlier for another reason): given back. */
  withdrawn(): void;
}

export type Admission = { admitted: true; slot: AttemptSlot } | { admitted: false; retryAfterSeconds: number };

interface AddressState {
  failures: number[];
  inProgress: number;
}

/** Sliding-window counts per address; pruned as it is used, so it needs no timer. */
export class FailureLimiter {
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly maxAddresses: number;
  private readonly now: () => number;
  private readonly addresses = new Map<string, AddressState>();

  constructor(options: FailureLimiterOptions = {}) {
    this.maxFailures = options.maxFailures ?? 20;
    this.windowMs = options.windowMs ?? 60_000;
    this.maxAddresses = options.maxAddresses ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Seconds until `address` may try again, counting only finished failures; 0 when it may now. */
  blockedFor(address: string): number {
    const { failures } = this.state(address);
    if (failures.length < this.maxFailures) return 0;
    return this.secondsUntilFree(failures);
  }

  /** Checks and reserves in one synchronous step; call it before any await that leads to the work. */
  admit(address: string): Admission {
    const state = this.state(address);
    if (state.failures.length + state.inProgress >= this.maxFailures) {
      // All slots may be reservations still running: they end within seconds.
      const retryAfterSeconds = state.failures.length >= this.maxFailures ? this.secondsUntilFree(state.failures) : 1;
      return { admitted: false, retryAfterSeconds };
    }
    state.inProgress++;
    this.remember(address, state);
    let open = true;
    const end = (failed: boolean) => {
      if (!open) return;
      open = false;
      state.inProgress--;
      if (failed) {
        state.failures.push(this.now());
        // Only the newest maxFailures matter for blocking.
        if (state.failures.length > this.maxFailures) state.failures.splice(0, state.failures.length - this.maxFailures);
      }
      this.remember(address, state);
    };
    return { admitted: true, slot: { succeeded: () => end(false), failed: () => end(true), withdrawn: () => end(false) } };
  }

  private secondsUntilFree(failures: number[]): number {
    const ms = failures[failures.length - this.maxFailures]! + this.windowMs - this.now();
    return Math.max(1, Math.ceil(ms / 1000));
  }

  private state(address: string): AddressState {
    const cutoff = this.now() - this.windowMs;
    const state = this.addresses.get(address) ?? { failures: [], inProgress: 0 };
    state.failures = state.failures.filter((t) => t > cutoff);
    return state;
  }

  /** Most recently used last; an address with nothing to remember is dropped. */
  private remember(address: string, state: AddressState): void {
    this.addresses.delete(address);
    if (state.failures.length === 0 && state.inProgress === 0) return;
    this.addresses.set(address, state);
    while (this.addresses.size > this.maxAddresses) this.addresses.delete(this.addresses.keys().next().value as string);
  }
}

/**
 * Counts open connections per key (a source address, a certificate thumbprint) against a
 * cap. A refusal says whether it is the first since the key reached the cap, so a flood is
 * logged once per episode rather than once per connection.
 */
export type Admission = { admitted: true; release(): void } | { admitted: false; firstRefusal: boolean };

export class ConnectionCap {
  private readonly open = new Map<string, number>();
  private readonly refusing = new Set<string>();

  constructor(readonly max: number) {}

  /** Counts one more connection for `key` unless it already holds `max`; release once it closes (idempotent). */
  admit(key: string): Admission {
    const count = this.open.get(key) ?? 0;
    if (count >= this.max) {
      const firstRefusal = !this.refusing.has(key);
      this.refusing.add(key);
      return { admitted: false, firstRefusal };
    }
    this.open.set(key, count + 1);
    let released = false;
    return {
      admitted: true,
      release: () => {
        if (released) return;
        released = true;
        const left = (this.open.get(key) ?? 1) - 1;
        if (left > 0) this.open.set(key, left);
        else this.open.delete(key);
        if (left < this.max) this.refusing.delete(key);
      },
    };
  }

  count(key: string): number {
    return this.open.get(key) ?? 0;
  }
}

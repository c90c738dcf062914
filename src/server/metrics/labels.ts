/**
 * Label values that come from outside the code (an error code a Tentacle sent, a reason a
 * peer was told) must not grow a metric without bound: each label keeps at most `max`
 * distinct values that match its pattern; anything else is counted as `other` (a new value
 * past the bound) or `invalid` (not shaped like a value of this label at all).
 */
export class BoundedLabel {
  private readonly seen = new Set<string>();

  constructor(
    private readonly pattern: RegExp,
    private readonly max: number,
  ) {}

  of(value: string): string {
    if (this.seen.has(value)) return value;
    if (!this.pattern.test(value)) return 'invalid';
    if (this.seen.size >= this.max) return 'other';
    this.seen.add(value);
    return value;
  }
}

/** `REEF_DEADLINE_EXCEEDED`: the codes of ReefError. */
export const errorCodeLabel = (): BoundedLabel => new BoundedLabel(/^REEF_[A-Z0-9_]{1,60}$/, 64);

/** `untrusted_certificate`, `websocket+proxy`, `files.beginUpload`: names this code chose. */
export const nameLabel = (max: number): BoundedLabel => new BoundedLabel(/^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$/, max);

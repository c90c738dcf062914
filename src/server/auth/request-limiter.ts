/**
 * Request budgets: a token bucket per key (an actor such as `api-key:key-...`, or a client
 * address), so one busy script, or one address hammering the public routes, cannot take
 * the API from everybody else, and clients behind one proxy (PROXY protocol) are counted
 * apart. A bucket holds up to `perMinute` requests and refills at `perMinute` a minute:
 * a burst of a minute's budget is allowed, a sustained rate above it is not. Bounded by
 * forgetting the stalest key as it is used, so it needs no timer.
 */

export interface RequestLimiterOptions {
  /** Requests per minute, sustained; also the largest burst. */
  perMinute: number;
  /** Keys remembered at once; the stalest are forgotten first. Default 10000. */
  maxKeys?: number;
  now?: () => number;
}

export type RequestAdmission = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  at: number;
}

export class RequestLimiter {
  readonly perMinute: number;
  private readonly ratePerMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: RequestLimiterOptions) {
    if (!(options.perMinute >= 1)) throw new RangeError(`perMinute must be at least 1, got ${options.perMinute}`);
    this.perMinute = options.perMinute;
    this.ratePerMs = options.perMinute / 60_000;
    this.maxKeys = options.maxKeys ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Takes one request from `key`'s budget, or says how long until there is one. */
  take(key: string): RequestAdmission {
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.perMinute, at: now };
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.at) * this.ratePerMs);
    bucket.at = now;
    // Most recently used last, so the stalest key is the first one forgotten.
    this.buckets.delete(key);
    if (bucket.tokens < 1) {
      this.buckets.set(key, bucket);
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / this.ratePerMs / 1000)) };
    }
    bucket.tokens -= 1;
    this.buckets.set(key, bucket);
    while (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string);
    return { allowed: true };
  }
}

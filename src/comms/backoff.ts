/**
 * Exponential backoff with full jitter: attempt n waits a uniformly random time in
 * [0, min(cap, base * 2^n)). With base 1 s the first retry comes within 1 s, and a fleet
 * reconnecting after a server restart spreads itself out instead of arriving at once.
 */
export function backoffDelay(attempt: number, baseMs = 1000, capMs = 60_000, random = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

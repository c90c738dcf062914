/**
 * Exponential backoff with full jitter: attempt n waits a uniformly random time in
 * [0, min(cap, base * 2^n)). With base 1 s the first retry comes within 1 s, and a fleet
 * reconnecting after a server restart spreads itself out instead of arriving at once.
 */
export function backoffDelay(attempt: number, baseMs = 1000, capMs = 60_000, random = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/**
 * How long to wait after a proxy refused this Tentacle's credentials: minutes, not
 * seconds. Proxies check the password against the corporate directory, which locks an
 * account after a handful of failures; a wrong password retried at the usual pace would
 * lock the account of whoever lent it. 5, 10, 20, then every 30 minutes: four attempts in
 * the first hour, two an hour after that. Up to a fifth more at random (never less, so the
 * counts hold) spreads a fleet that shares one proxy account.
 */
export function proxyAuthRetryDelay(attempt: number, random = Math.random): number {
  const minutes = Math.min(30, 5 * 2 ** Math.min(attempt, 3));
  return Math.round(minutes * 60_000 * (1 + 0.2 * random()));
}

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

/**
 * For this long after a live link was lost, a refused connection is taken for a server
 * restart in progress and retried at a flat pace instead of the exponential one.
 */
export const RESTART_WINDOW_MS = 60_000;

/**
 * The wait before the next attempt while a server restarts: 0.5 to 1.5 s, whatever the
 * attempt. A refused connection (nothing listening: the port closed between the old
 * process and the new one) costs the server nothing, being the kernel's reset; escalating
 * meant a Tentacle that saw four refusals in a 3 s restart waited up to 16 s more, and a
 * fleet came back long after the server (300 Tentacles: 13 s after the new process
 * listened, `npm run bench -- reconnect --tentacles=300`). The jitter still spreads the
 * fleet over a second.
 */
export function restartRetryDelay(random = Math.random): number {
  return Math.floor(500 + random() * 1000);
}

import { ReefError } from '../errors.js';

/**
 * "The server is busy, come back later": how a saturated server turns a new comms
 * connection away before any TLS work (docs/protocol.md, "Admission control"), and how the
 * Tentacle reads and bounds it. Shared by both ends so the two cannot drift apart.
 *
 * On a TLS carrier (the comms port, the front door on 443, a CONNECT proxy's tunnel) the
 * refusal is a plaintext TLS alert record, fatal `user_canceled` (90), sent in answer to
 * the ClientHello: seven bytes, no key exchange, no certificate. A TLS stack never sends
 * it as fatal on its own, so the Tentacle can tell it from any real TLS failure. A TLS
 * alert carries no number, and Node hands every byte the server sends before its
 * ServerHello to OpenSSL, never to JavaScript, so on these carriers the hint is this
 * protocol's default (BUSY_DEFAULT_HINT_MS). On the WebSocket carrier the refusal is the
 * HTTP answer to the upgrade, `503` with `Retry-After` (whole seconds), a number the
 * Tentacle reads.
 */
export const BUSY_ALERT = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 90]);

/** What OpenSSL reports when it reads BUSY_ALERT (Node's `err.code`). */
const BUSY_ALERT_ERROR_CODE = 'ERR_SSL_TLSV1_ALERT_USER_CANCELLED';

/** The wait a Tentacle takes from a busy refusal that names none (a TLS carrier), before jitter. */
export const BUSY_DEFAULT_HINT_MS = 1000;

/**
 * The longest a busy refusal can make a Tentacle wait. The hint comes before either side
 * is authenticated, so anyone on the path could forge one: bounded like this, a forged hint
 * delays a Tentacle no more than a plain refused connection would (its backoff reaches 60 s).
 */
export const BUSY_MAX_WAIT_MS = 30_000;

/** The shortest hint honoured, so a hint of 0 cannot turn a fleet into a tight retry loop. */
const BUSY_MIN_HINT_MS = 250;

/** REEF_SERVER_BUSY, with the server's hint when the carrier could carry one. */
export class ServerBusyError extends ReefError {
  constructor(
    where: string,
    /** The server's hint as received (unbounded, untrusted); undefined when it gave none. */
    readonly retryAfterMs: number | undefined,
  ) {
    super(
      'REEF_SERVER_BUSY',
      `The Reef server at ${where} is saturated (too many connections being set up at once) and turned this connection away before TLS` +
        (retryAfterMs === undefined ? '' : `, asking to come back in ${Math.round(retryAfterMs / 1000)} s`) +
        '. The Tentacle tries again shortly; nothing needs doing unless this goes on for minutes (then see "Admission control" in docs/operations.md).',
    );
  }
}

/** Whether a TLS error is the client's side of BUSY_ALERT. */
export function isBusyAlert(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === BUSY_ALERT_ERROR_CODE;
}

/**
 * How long to wait after a busy refusal: the hint (the default when none came) bounded to
 * [0.25 s, 30 s], times a random factor in [0.5, 1.5), never past 30 s. The jitter spreads
 * the Tentacles refused together over a window as long as the hint.
 */
export function busyRetryDelay(hintMs: number | undefined, random = Math.random): number {
  const hint = hintMs === undefined || !Number.isFinite(hintMs) ? BUSY_DEFAULT_HINT_MS : Math.min(BUSY_MAX_WAIT_MS, Math.max(BUSY_MIN_HINT_MS, hintMs));
  return Math.min(BUSY_MAX_WAIT_MS, Math.floor(hint * (0.5 + random())));
}

/** `Retry-After` as milliseconds: delta-seconds only (an HTTP date, or anything else, gives undefined). */
export function parseRetryAfter(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d{1,9}\s*$/.test(value)) return undefined;
  return Number(value) * 1000;
}

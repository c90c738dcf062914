import { setTimeout as sleep } from 'node:timers/promises';
import { isReefError, ReefError, type ErrorCode } from '../errors.js';
import { formatDuration } from '../format.js';
import type { Logger } from '../logging.js';
import { backoffDelay } from './backoff.js';
import { describeTarget, TcpConnectError, type TcpFailureKind } from './carriers/tcp.js';
import type { RpcClient } from './rpc/client.js';

/** One attempt to open a comms connection to a listening Tentacle (shared by the calls that wait for it). */
export interface DialAttempt {
  /** Settles once the connection is up (verified both ways) or the attempt failed. */
  readonly session: Promise<RpcClient>;
  /** The address TCP connected to, once it has: from then on only TLS and pinning can fail. */
  readonly tcpConnectedTo: string | undefined;
}

export interface ListeningDialOptions {
  /** Names the Tentacle in messages: `Tentacle "web-01" (thumbprint)`. */
  tentacle: string;
  host: string;
  port: number;
  /** How long to keep dialling while the Tentacle cannot be reached (the pickup timeout). */
  pickupTimeoutMs: number;
  /**
   * False when the caller chose its own bound instead of the pickup timeout (a running
   * script's lost-contact window): messages then give the time without calling it that.
   */
  isPickupTimeout: boolean;
  /** Makes one attempt, or joins the one in flight. */
  attempt(): DialAttempt;
  /** Aborted when the caller gives up or the server shuts down. */
  signal: AbortSignal;
  /** The error to throw once `signal` aborted. */
  stopped(): ReefError;
  logger: Logger;
  /** Told once, in words for a task log, when the first attempt failed and dialling goes on. */
  onWaiting?(note: string): void;
}

/** Between attempts: the first retry within half a second, then up to 10 s apart (full jitter). */
const RETRY_BASE_MS = 500;
const RETRY_CAP_MS = 10_000;

/**
 * What an operator can do when the network keeps the server from dialling a machine:
 * turn the direction round. A polling Tentacle needs only outbound connections, which a
 * branch firewall lets through far more often than inbound ones.
 */
const POLLING_HINT =
  'Where inbound connections to the machine are blocked, let its Tentacle poll this server instead (polling needs only outbound connections): ' +
  'on the machine, run "tentacle register-with --server <this server\'s URL> --apiKey <key> --comms-style TentacleActive ' +
  '--environment <environment> --role <role> --force" ("tentacle register-worker ... --workerpool <pool> --comms-style TentacleActive --force" for a worker); ' +
  'add --server-comms-address https://<polling host name> or --server-web-socket wss://<host>/<path> to poll over port 443.';

/**
 * Dials a listening Tentacle until it answers or the pickup timeout passes: the same bound
 * a polling Tentacle gets to connect. Connections that TCP could not open (refused, no
 * answer, unreachable, a name that does not resolve) are tried again with backoff, since a
 * Tentacle restarting or a host rebooting is an everyday cause; once the time is up, the
 * error says which of these it was. A TLS failure after TCP connected (a timeout, a reset,
 * something else than a Tentacle on the port) and a refused certificate fail at once:
 * trying again would not change them.
 *
 * Errors: REEF_LISTENING_REFUSED, REEF_LISTENING_UNREACHABLE, REEF_LISTENING_TLS_FAILED,
 * REEF_UNTRUSTED_CERTIFICATE (pinning, either way), the Tentacle's own verdict, or
 * `stopped()`. Each names the address dialled.
 */
export async function dialListening(options: ListeningDialOptions): Promise<RpcClient> {
  const { signal } = options;
  const started = Date.now();
  const deadline = started + options.pickupTimeoutMs;
  let last: TcpConnectError | undefined;
  let failures = 0;
  for (let n = 0; ; n++) {
    if (signal.aborted) throw options.stopped();
    const attempt = options.attempt();
    const outcome = await settleWithin(attempt.session, deadline - Date.now(), signal);
    if (outcome.state === 'connected') return outcome.client;
    if (outcome.state === 'aborted') throw options.stopped();
    if (outcome.state === 'timeout') {
      // The time ran out with this attempt still under way: what the earlier ones met
      // says more than an attempt cut short; without them, how far it got.
      if (last) throw gaveUp(options, last, failures, Date.now() - started);
      if (attempt.tcpConnectedTo === undefined) {
        throw gaveUp(options, new TcpConnectError('no-answer', 'ETIMEDOUT', [], `no answer within ${formatDuration(options.pickupTimeoutMs)}.`), 1, Date.now() - started);
      }
      throw tlsFailed(options, attempt.tcpConnectedTo, `the TLS handshake did not complete within ${bound(options)}.`);
    }
    const err = outcome.error;
    if (isReefError(err, 'REEF_CALL_CANCELLED') && signal.aborted) throw options.stopped();
    if (!(err instanceof TcpConnectError)) throw afterConnect(options, attempt.tcpConnectedTo, err);
    if (err.kind === 'reset') {
      throw tlsFailed(options, err.addresses[0], 'the connection was reset (ECONNRESET) before the TLS handshake could start.', err);
    }
    last = err;
    failures++;
    const remaining = deadline - Date.now();
    if (failures === 1) {
      const note =
        `Could not connect to ${options.tentacle} at ${where(options, err)}: ${errnoWords(err)}. ` +
        `Trying again until ${new Date(deadline).toISOString()}, for up to ${bound(options)}.`;
      options.logger.info({ tentacle: options.tentacle, at: where(options, err), err: err.errno }, `comms: ${note}`);
      options.onWaiting?.(note);
    } else {
      options.logger.debug({ tentacle: options.tentacle, at: where(options, err), err: err.errno, attempt: n + 1 }, 'comms: listening tentacle still unreachable');
    }
    if (remaining <= 0) throw gaveUp(options, err, failures, Date.now() - started);
    try {
      await sleep(Math.min(remaining, backoffDelay(n, RETRY_BASE_MS, RETRY_CAP_MS)), undefined, { signal });
    } catch {
      throw options.stopped();
    }
    if (Date.now() >= deadline) throw gaveUp(options, err, failures, Date.now() - started);
  }
}

type Settled = { state: 'connected'; client: RpcClient } | { state: 'failed'; error: unknown } | { state: 'timeout' } | { state: 'aborted' };

/** The attempt's outcome, or 'timeout' after `ms`, or 'aborted'; the attempt itself goes on (it is bounded on its own). */
function settleWithin(session: Promise<RpcClient>, ms: number, signal: AbortSignal): Promise<Settled> {
  return new Promise((resolve) => {
    const done = (settled: Settled) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(settled);
    };
    const onAbort = () => done({ state: 'aborted' });
    const timer = setTimeout(() => done({ state: 'timeout' }), Math.max(0, ms));
    signal.addEventListener('abort', onAbort, { once: true });
    session.then(
      (client) => done({ state: 'connected', client }),
      (error: unknown) => done({ state: 'failed', error }),
    );
  });
}

/** host:port, and the IP addresses tried when they are not `host` itself. */
function where(options: ListeningDialOptions, err?: TcpConnectError, connectedTo?: string): string {
  return describeTarget(options.host, options.port, undefined, connectedTo ? [connectedTo] : (err?.addresses ?? []));
}

function errnoWords(err: TcpConnectError): string {
  if (err.errno === 'ETIMEDOUT') return 'no answer';
  return err.kind === 'refused' ? `the connection was refused (${err.errno})` : err.errno;
}

const GAVE_UP: Readonly<Record<Exclude<TcpFailureKind, 'reset'>, { code: ErrorCode; what(err: TcpConnectError, port: number): string; advice(host: string, port: number): string }>> = {
  refused: {
    code: 'REEF_LISTENING_REFUSED',
    what: () => 'every connection was refused (ECONNREFUSED, a TCP reset): nothing listens on that port, or a firewall rejects the connection.',
    advice: (_host, port) =>
      `Check on the machine that the Tentacle runs and listens on port ${port} ("tentacle show-configuration" shows its port; "tentacle service --start" starts it), ` +
      `and that no firewall rejects inbound TCP ${port} from this server.`,
  },
  'no-answer': {
    code: 'REEF_LISTENING_UNREACHABLE',
    what: (err) =>
      err.errno === 'ETIMEDOUT'
        ? 'no connection attempt got any answer: a firewall drops the traffic, or the host is down.'
        : `the network reported the host unreachable (${err.errno}): the host is down or there is no route to it, or a firewall rejects with an ICMP error.`,
    advice: (_host, port) => `Check that the machine is up and that the firewalls on the way let inbound TCP ${port} from this server through.`,
  },
  unresolved: {
    code: 'REEF_LISTENING_UNREACHABLE',
    what: (err, _port) => `its host name did not resolve (${err.errno}).`,
    advice: (host) => `Check the host name the machine registered with ("${host}", tentacle register-with --publicHostName) and this server's DNS.`,
  },
  other: {
    code: 'REEF_LISTENING_UNREACHABLE',
    what: (err) => `the connection could not be opened (${err.errno}).`,
    advice: (_host, port) => `Check that this server can open connections to that address and port ${port}.`,
  },
};

/** "the pickup timeout (2 min; detail)", or "2 min (detail)" when the caller chose the time. */
function bound(options: ListeningDialOptions, detail?: string): string {
  const time = formatDuration(options.pickupTimeoutMs);
  if (options.isPickupTimeout) return `the pickup timeout (${detail ? `${time}; ${detail}` : time})`;
  return detail ? `${time} (${detail})` : time;
}

/** The pickup timeout passed with every attempt failing before TCP connected. */
function gaveUp(options: ListeningDialOptions, err: TcpConnectError, attempts: number, waitedMs: number): ReefError {
  const reason = GAVE_UP[err.kind === 'reset' ? 'other' : err.kind];
  return new ReefError(
    reason.code,
    `Could not reach ${options.tentacle} at ${where(options, err)} within ${bound(options, `${attempts} ${attempts === 1 ? 'attempt' : 'attempts'} over ${formatDuration(waitedMs)}`)}: ` +
      `${reason.what(err, options.port)} ` +
      `${reason.advice(options.host, options.port)} ${POLLING_HINT}`,
    { cause: err },
  );
}

function tlsFailed(options: ListeningDialOptions, connectedTo: string | undefined, detail: string, cause?: unknown): ReefError {
  return new ReefError(
    'REEF_LISTENING_TLS_FAILED',
    `Could not reach ${options.tentacle} at ${where(options, undefined, connectedTo)}: TCP connected, but ${detail} ` +
      'Something other than a Reef Tentacle may listen on that port, or a device on the way (TLS inspection, a proxy) interferes with the connection. ' +
      `Check the port the machine registered with against "tentacle show-configuration" on the machine.`,
    cause === undefined ? undefined : { cause },
  );
}

/** An attempt that failed once TCP was up: TLS, pinning either way, or the Tentacle's verdict. */
function afterConnect(options: ListeningDialOptions, connectedTo: string | undefined, err: unknown): ReefError {
  if (!(err instanceof ReefError)) return tlsFailed(options, connectedTo, `the TLS handshake failed: ${(err as Error).message}.`, err);
  switch (err.code) {
    case 'REEF_HANDSHAKE_TIMEOUT':
    case 'REEF_CONNECTION_LOST':
    case 'REEF_PROTOCOL_ERROR':
    case 'REEF_CONNECT_FAILED': {
      // dialSecure wraps Node's TLS errors ("Could not connect to ..."): the cause says it plainly.
      const detail = err.code === 'REEF_CONNECT_FAILED' && err.cause instanceof Error ? err.cause.message : err.message;
      return tlsFailed(options, connectedTo, `the TLS handshake failed: ${detail.replace(/\.$/, '')}.`, err);
    }
    case 'REEF_UNTRUSTED_CERTIFICATE':
      return new ReefError(err.code, `Could not reach ${options.tentacle} at ${where(options, undefined, connectedTo)}: TCP and TLS connected, but pinning refused the connection. ${err.message}`, {
        cause: err,
      });
    default:
      return new ReefError(err.code, `Could not reach ${options.tentacle} at ${where(options, undefined, connectedTo)}: TCP and TLS connected, but the Tentacle refused the connection: ${err.message}`, {
        cause: err,
      });
  }
}

import net from 'node:net';
import { ReefError } from '../../errors.js';

export interface TcpConnectOptions {
  /**
   * Connect to this address instead of resolving `host`, like `curl --resolve`: for a
   * name DNS does not know yet, or one node behind a load-balanced name. `host` still
   * names the peer in messages (and in TLS SNI above this layer).
   */
  resolveTo?: string;
  /** From the first attempt to an established connection. */
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * Why a TCP connection could not be opened, as far as the network tells: the peer's host
 * answered with a reset (`refused`: nothing listens, or a firewall rejects); nothing came
 * back in time, or the network reported the host unreachable (`no-answer`: a firewall
 * dropping, the host down, no route); the connection was made, then reset before we saw it
 * (`reset`: Linux reports a reset in answer to the SYN as ECONNREFUSED, a later one as
 * ECONNRESET); the name did not resolve (`unresolved`); anything else (`other`: a local
 * error such as EADDRNOTAVAIL).
 */
export type TcpFailureKind = 'refused' | 'no-answer' | 'reset' | 'unresolved' | 'other';

/** REEF_CONNECT_FAILED with what the network said, for messages that tell a refusal from silence. */
export class TcpConnectError extends ReefError {
  constructor(
    readonly kind: TcpFailureKind,
    /** The errno reported (ECONNREFUSED, EHOSTUNREACH...), or ETIMEDOUT for our own timeout. */
    readonly errno: string,
    /** The IP addresses tried, in order (after DNS, or `resolveTo`). */
    readonly addresses: readonly string[],
    message: string,
    cause?: unknown,
  ) {
    super('REEF_CONNECT_FAILED', message, cause === undefined ? undefined : { cause });
  }
}

const KIND_OF_ERRNO: Readonly<Record<string, TcpFailureKind>> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  ETIMEDOUT: 'no-answer',
  EHOSTUNREACH: 'no-answer',
  ENETUNREACH: 'no-answer',
  EHOSTDOWN: 'no-answer',
  ENETDOWN: 'no-answer',
  ENOTFOUND: 'unresolved',
  EAI_AGAIN: 'unresolved',
  EAI_FAIL: 'unresolved',
  EAI_NODATA: 'unresolved',
  EAI_NONAME: 'unresolved',
};

/**
 * Opens a TCP connection (Nagle off: the comms protocol is request/response), resolving
 * once it is established. Failures name what was dialled: TcpConnectError
 * (REEF_CONNECT_FAILED: refused, unresolvable, unreachable, or not within `timeoutMs`),
 * REEF_CALL_CANCELLED when `signal` fires first.
 */
export function connectTcp(host: string, port: number, options: TcpConnectOptions): Promise<net.Socket> {
  const where = describeTarget(host, port, options.resolveTo);
  if (options.signal?.aborted) return Promise.reject(aborted(where, options.signal));
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: options.resolveTo ?? host, port, noDelay: true });
    // Node tries each address DNS gave in turn (happy eyeballs); messages name them.
    const addresses: string[] = [];
    const onAttempt = (ip: string) => {
      if (!addresses.includes(ip)) addresses.push(ip);
    };
    const failure = (errno: string, detail: string, cause?: unknown) =>
      new TcpConnectError(KIND_OF_ERRNO[errno] ?? 'other', errno, addresses, `Could not connect to ${describeTarget(host, port, options.resolveTo, addresses)}: ${detail}`, cause);
    const timer = setTimeout(() => fail(failure('ETIMEDOUT', `no answer within ${options.timeoutMs} ms.`)), options.timeoutMs);
    const onAbort = () => fail(aborted(where, options.signal!));
    const onError = (err: NodeJS.ErrnoException & { errors?: NodeJS.ErrnoException[] }) => {
      const errno = err.code ?? err.errors?.[0]?.code ?? err.message;
      fail(failure(errno, `${errno}.`, err));
    };
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    function fail(err: ReefError) {
      cleanup();
      socket.destroy();
      reject(err);
    }
    function cleanup() {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off('connect', onConnect);
      socket.off('connectionAttempt', onAttempt);
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('connectionAttempt', onAttempt);
    socket.once('error', onError);
    socket.once('connect', onConnect);
  });
}

/**
 * `host:port`, bracketing IPv6 literals, plus the address actually dialled when it is not
 * `host`: `resolveTo` overriding DNS, or the addresses DNS gave (when known).
 */
export function describeTarget(host: string, port: number, resolveTo?: string, addresses: readonly string[] = []): string {
  const authority = hostPort(host, port);
  const dialled = resolveTo ? [resolveTo] : addresses;
  const other = dialled.filter((address) => address !== host);
  return other.length ? `${authority} (at address ${other.join(', ')})` : authority;
}

/** The authority form of host and port: `example.com:443`, `[::1]:443`. */
export function hostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

export function aborted(where: string, signal: AbortSignal): ReefError {
  return new ReefError('REEF_CALL_CANCELLED', `Connecting to ${where} was cancelled.`, { cause: signal.reason });
}

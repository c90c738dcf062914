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
 * Opens a TCP connection (Nagle off: the comms protocol is request/response), resolving
 * once it is established. Failures are ReefErrors naming what was dialled:
 * REEF_CONNECT_FAILED (refused, unresolvable, unreachable, or not within `timeoutMs`),
 * REEF_CALL_CANCELLED when `signal` fires first.
 */
export function connectTcp(host: string, port: number, options: TcpConnectOptions): Promise<net.Socket> {
  const where = describeTarget(host, port, options.resolveTo);
  if (options.signal?.aborted) return Promise.reject(aborted(where, options.signal));
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: options.resolveTo ?? host, port, noDelay: true });
    const timer = setTimeout(() => {
      fail(new ReefError('REEF_CONNECT_FAILED', `Could not connect to ${where}: no answer within ${options.timeoutMs} ms.`));
    }, options.timeoutMs);
    const onAbort = () => fail(aborted(where, options.signal!));
    const onError = (err: NodeJS.ErrnoException) => {
      fail(new ReefError('REEF_CONNECT_FAILED', `Could not connect to ${where}: ${err.code ?? err.message}.`, { cause: err }));
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
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', onError);
    socket.once('connect', onConnect);
  });
}

/** `host:port`, bracketing IPv6 literals, plus the address actually dialled when `resolveTo` overrides DNS. */
export function describeTarget(host: string, port: number, resolveTo?: string): string {
  const authority = hostPort(host, port);
  return resolveTo && resolveTo !== host ? `${authority} (at address ${resolveTo})` : authority;
}

/** The authority form of host and port: `example.com:443`, `[::1]:443`. */
export function hostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

export function aborted(where: string, signal: AbortSignal): ReefError {
  return new ReefError('REEF_CALL_CANCELLED', `Connecting to ${where} was cancelled.`, { cause: signal.reason });
}

import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import type { Duplex, Readable } from 'node:stream';
import { errorFromPeer, ReefError } from '../../errors.js';
import type { Logger } from '../../logging.js';
import { encodeFrame, readFrame } from '../frame.js';
import { startHeartbeat } from '../heartbeat.js';
import type { CommsLimits } from '../limits.js';
import type { PeerInfo } from '../peer.js';
import { translateStreamError } from './errors.js';
import { HEADER_BODY, HEADER_DEADLINE, RPC_PATH_PREFIX, type CallOptions, type Envelope, type ErrorEnvelope } from './types.js';
import { ConnectionEnd } from './connection-end.js';
import { SendPacer } from './pacing.js';
import { http2Settings, widenSessionWindow } from './settings.js';

const { NGHTTP2_CANCEL } = http2.constants;

/** Told of every call once it has its answer or failed: its duration, and its error code if it failed (for metrics). */
export type CallObserver = (method: string, seconds: number, errorCode: string | undefined) => void;

/**
 * The calling end of a comms connection: the Reef server's side, whichever side dialled.
 * It is an HTTP/2 client on the secured socket; each call is one HTTP/2 stream, so calls
 * are multiplexed with per-call flow control, and cancelling one resets only its stream.
 */
export class RpcClient {
  readonly peer: PeerInfo;
  readonly connectedAt = new Date();
  /** Calls in flight, for routing to the least busy connection. */
  inflight = 0;
  lastCallAt = Date.now();
  /** Resolves once the connection is gone, with the reason if it failed. */
  readonly closed: Promise<Error | undefined>;

  private readonly session: ClientHttp2Session;
  private readonly limits: CommsLimits;
  /** Request bodies (uploads) pass it, so they never queue far ahead of small calls. */
  private readonly pacer: SendPacer;
  private readonly observe: CallObserver | undefined;
  private readonly end: ConnectionEnd;

  constructor(socket: Duplex, peer: PeerInfo, limits: CommsLimits, logger: Logger, observe?: CallObserver) {
    this.peer = peer;
    this.limits = limits;
    this.observe = observe;
    this.session = http2.connect('http://reef.invalid', {
      createConnection: () => socket,
      settings: http2Settings(limits),
      maxSessionMemory: 64,
    });
    this.session.on('connect', () => widenSessionWindow(this.session));
    this.pacer = new SendPacer(this.session, socket);
    this.end = new ConnectionEnd(this.session, socket, () => {
      stopHeartbeat();
      this.pacer.close();
    });
    this.closed = this.end.closed;
    this.session.on('error', (err) => {
      this.end.failed(err);
      logger.info({ err: err.message, thumbprint: peer.thumbprint }, 'comms: connection error');
    });
    const stopHeartbeat = startHeartbeat(this.session, socket, { intervalMs: limits.heartbeatIntervalMs, timeoutMs: limits.heartbeatTimeoutMs }, (err) => {
      logger.warn({ thumbprint: peer.thumbprint, remote: peer.remoteAddress }, err.message);
      this.close(err);
    }, () => this.end.destroy());
  }

  get isOpen(): boolean {
    return !this.session.closed && !this.session.destroyed;
  }

  /** Calls `method` and resolves with its JSON result. */
  async call(method: string, args: unknown, options: CallOptions = {}): Promise<unknown> {
    const { result, body } = await this.request(method, args, options);
    body?.resume();
    return result;
  }

  /** Calls a method that answers with a streamed body (a download, say). */
  async callForBody(method: string, args: unknown, options: CallOptions = {}): Promise<{ result: unknown; body: Readable }> {
    const { result, body } = await this.request(method, args, options);
    if (!body) throw new ReefError('REEF_PROTOCOL_ERROR', `${method} answered without the body it should stream.`);
    return { result, body };
  }

  close(reason?: Error): void {
    if (reason) this.end.destroy(reason);
    else this.session.close();
  }

  private request(method: string, args: unknown, options: CallOptions): Promise<{ result: unknown; body: Readable | null }> {
    const answer = this.send(method, args, options);
    const observe = this.observe;
    if (observe) {
      const started = performance.now();
      const seconds = () => (performance.now() - started) / 1000;
      answer.then(
        () => observe(method, seconds(), undefined),
        (err: unknown) => observe(method, seconds(), err instanceof ReefError ? err.code : 'REEF_INTERNAL'),
      );
    }
    return answer;
  }

  private send(method: string, args: unknown, options: CallOptions): Promise<{ result: unknown; body: Readable | null }> {
    const what = `The call ${method} to ${this.peer.remoteAddress}`;
    const frame = encodeFrame(args, this.limits.maxMessageBytes);
    if (options.signal?.aborted) return Promise.reject(new ReefError('REEF_CALL_CANCELLED', `${what} was cancelled.`));
    if (!this.isOpen) return Promise.reject(new ReefError('REEF_CONNECTION_LOST', `${what} could not start: the connection is closed.`));
    const deadlineMs = options.deadlineMs ?? this.limits.defaultCallDeadlineMs;
    let stream: ClientHttp2Stream;
    try {
      stream = this.session.request(
        { ':method': 'POST', ':path': RPC_PATH_PREFIX + method, [HEADER_DEADLINE]: String(deadlineMs), [HEADER_BODY]: options.body ? '1' : '0' },
        { endStream: false },
      );
    } catch (err) {
      return Promise.reject(translateStreamError(err as NodeJS.ErrnoException, what));
    }
    this.inflight++;
    this.lastCallAt = Date.now();

    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | null, value?: { result: unknown; body: Readable | null }) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve(value!);
      };
      // Cancellation and the deadline cover the whole call, a streamed answer included.
      const abort = (err: ReefError) => {
        options.body?.destroy();
        if (!stream.destroyed) {
          stream.close(NGHTTP2_CANCEL);
          stream.destroy(err);
        }
        settle(err);
      };
      const timer = deadlineMs > 0 ? setTimeout(() => abort(new ReefError('REEF_DEADLINE_EXCEEDED', `${what} did not finish within ${deadlineMs} ms.`)), deadlineMs) : undefined;
      const onAbort = () => abort(new ReefError('REEF_CALL_CANCELLED', `${what} was cancelled.`));
      options.signal?.addEventListener('abort', onAbort, { once: true });

      stream.on('error', (err) => settle(translateStreamError(err, what)));
      stream.on('close', () => {
        this.inflight--;
        this.lastCallAt = Date.now();
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        // When headers, data and END_STREAM arrive in one read, Node emits 'close' on the
        // next tick, before the promise that delivers the already-read answer settles; so
        // "lost" may only be concluded once that promise work has run. (The error is only
        // made when needed: capturing its stack on every successful call costs ~10% of it.)
        setImmediate(() => {
          if (!settled) settle(new ReefError('REEF_CONNECTION_LOST', `${what} ended before its answer arrived (the connection was lost or the call was reset).`));
        });
      });
      stream.on('response', (headers) => {
        readFrame(stream, this.limits.maxMessageBytes).then(
          (value) => {
            const envelope = value as Envelope;
            if (!envelope || typeof envelope !== 'object' || typeof envelope.ok !== 'boolean') {
              return abort(new ReefError('REEF_PROTOCOL_ERROR', `${what} got a malformed answer.`));
            }
            if (!envelope.ok) {
              // The service has given up on this call; stop sending it a body.
              options.body?.unpipe(stream);
              options.body?.destroy();
              if (!stream.destroyed) stream.close(NGHTTP2_CANCEL);
              // The code is the peer's: one this version does not know is kept, not trusted.
              const error = (envelope.error ?? {}) as Partial<ErrorEnvelope['error']>;
              return settle(errorFromPeer(error.code, typeof error.message === 'string' ? error.message : `${what} failed on the peer (no message).`));
            }
            settle(null, { result: envelope.result, body: headers[HEADER_BODY] === '1' ? stream : null });
          },
          (err: Error) => abort(err instanceof ReefError ? err : translateStreamError(err, what)),
        );
      });

      stream.write(frame);
      if (options.body) {
        this.pacer.send(options.body, stream).catch((err: Error) => {
          if (!settled) abort(new ReefError('REEF_BODY_FAILED', `${what} failed while sending its body: ${err.message}`, { cause: err }));
        });
      } else {
        stream.end();
      }
    });
  }
}

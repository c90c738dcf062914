import http2, { type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { errorMessage, ReefError } from '../../errors.js';
import type { Logger } from '../../logging.js';
import { encodeFrame, readFrame } from '../frame.js';
import { startHeartbeat } from '../heartbeat.js';
import type { CommsLimits } from '../limits.js';
import type { PeerInfo } from '../peer.js';
import { ConnectionEnd } from './connection-end.js';
import { SendPacer } from './pacing.js';
import { http2Settings, widenSessionWindow } from './settings.js';
import { HEADER_BODY, HEADER_DEADLINE, RPC_PATH_PREFIX, StreamingResult, type Envelope, type ServiceTable } from './types.js';

const { NGHTTP2_INTERNAL_ERROR } = http2.constants;

export interface ServedConnection {
  /** Resolves once the connection is gone, with the reason if it failed. */
  closed: Promise<Error | undefined>;
  close(): void;
}

/**
 * The serving end of a comms connection: the Tentacle's side, whichever side dialled.
 * It is an HTTP/2 server on the secured socket, so polling and listening run exactly the
 * same service code.
 */
export class ServiceHost {
  private readonly connections = new Map<ServerHttp2Session, { peer: PeerInfo; end: ConnectionEnd }>();

  constructor(
    private readonly services: ServiceTable,
    private readonly limits: CommsLimits,
    private readonly logger: Logger,
  ) {}

  /** Serves calls on `socket` until it closes. */
  serve(socket: Duplex, peer: PeerInfo): ServedConnection {
    const session = http2.performServerHandshake(socket, {
      settings: http2Settings(this.limits),
      maxSessionMemory: 64,
    });
    widenSessionWindow(session);
    // Streamed answers (downloads) pass it, so they never queue far ahead of small answers.
    const pacer = new SendPacer(session, socket);
    const end = new ConnectionEnd(session, socket, () => {
      stopHeartbeat();
      pacer.close();
      this.connections.delete(session);
    });
    session.on('error', (err) => {
      end.failed(err);
      this.logger.info({ err: err.message, remote: peer.remoteAddress }, 'comms: connection error');
    });
    session.on('stream', (stream, headers) => {
      this.handle(stream, headers, peer, pacer).catch((err) => this.logger.error({ err }, 'comms: call handling failed'));
    });
    const stopHeartbeat = startHeartbeat(session, socket, { intervalMs: this.limits.heartbeatIntervalMs, timeoutMs: this.limits.heartbeatTimeoutMs }, (err) => {
      this.logger.warn({ remote: peer.remoteAddress }, err.message);
      end.destroy(err);
    }, () => end.destroy());
    this.connections.set(session, { peer, end });
    return { closed: end.closed, close: () => end.destroy() };
  }

  /** Closes every connection this host serves. */
  close(): void {
    for (const { end } of this.connections.values()) end.destroy();
  }

  /** Closes the connections of one peer (its trust was withdrawn); returns how many. */
  disconnect(thumbprint: string): number {
    let closed = 0;
    for (const { peer, end } of this.connections.values()) {
      if (peer.thumbprint !== thumbprint) continue;
      end.destroy();
      closed++;
    }
    return closed;
  }

  private async handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, peer: PeerInfo, pacer: SendPacer): Promise<void> {
    const path = headers[':path'] ?? '';
    const method = path.startsWith(RPC_PATH_PREFIX) ? path.slice(RPC_PATH_PREFIX.length) : '';
    const controller = new AbortController();
    let answered = false;
    stream.on('error', (err) => this.logger.debug({ err: err.message, method }, 'comms: call stream error'));
    stream.on('close', () => {
      if (!answered) controller.abort(new ReefError('REEF_CALL_CANCELLED', `The call ${method} was cancelled by the caller or its connection was lost.`));
    });
    const deadlineMs = Number(headers[HEADER_DEADLINE] ?? 0);
    const timer =
      deadlineMs > 0
        ? setTimeout(() => controller.abort(new ReefError('REEF_DEADLINE_EXCEEDED', `The call ${method} passed its ${deadlineMs} ms deadline.`)), deadlineMs)
        : undefined;
    const hasBody = headers[HEADER_BODY] === '1';

    try {
      const handler = this.services.get(method);
      if (!handler) throw new ReefError('REEF_UNKNOWN_METHOD', `This Tentacle has no method "${method}"; it may be older than the server.`);
      const args = await readFrame(stream, this.limits.maxMessageBytes);
      const outcome = await handler(args, { signal: controller.signal, peer, body: hasBody ? stream : null });
      if (stream.destroyed) return;
      if (outcome instanceof StreamingResult) {
        const head = encodeFrame({ ok: true, result: outcome.result } satisfies Envelope, this.limits.maxMessageBytes);
        stream.respond({ ':status': 200, [HEADER_BODY]: '1' });
        answered = true;
        stream.write(head);
        await pacer.send(outcome.body, stream).catch((err: Error) => {
          this.logger.warn({ method, err: err.message }, 'comms: streamed answer failed');
          if (!stream.destroyed) stream.close(NGHTTP2_INTERNAL_ERROR);
        });
      } else {
        const frame = encodeFrame({ ok: true, result: outcome ?? null } satisfies Envelope, this.limits.maxMessageBytes);
        answered = true;
        stream.respond({ ':status': 200 });
        stream.end(frame);
        if (hasBody && !stream.readableEnded) stream.resume(); // a body the method did not read
      }
    } catch (err) {
      const code = err instanceof ReefError ? err.code : 'REEF_INTERNAL';
      const message = errorMessage(err);
      if (code === 'REEF_MESSAGE_TOO_LARGE' || code === 'REEF_PROTOCOL_ERROR') {
        this.logger.warn({ method, remote: peer.remoteAddress, code }, `comms: refused a call: ${message}`);
      } else if (!(err instanceof ReefError)) {
        this.logger.error({ method, err }, 'comms: a service method failed unexpectedly');
      }
      answered = true;
      if (stream.destroyed) return;
      if (stream.headersSent) {
        stream.close(NGHTTP2_INTERNAL_ERROR);
        return;
      }
      stream.respond({ ':status': 200 });
      stream.end(encodeFrame({ ok: false, error: { code, message } } satisfies Envelope, this.limits.maxMessageBytes));
      stream.resume(); // discard whatever the caller still sends
    } finally {
      clearTimeout(timer);
    }
  }
}

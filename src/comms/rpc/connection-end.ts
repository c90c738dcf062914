import type { Http2Session } from 'node:http2';
import type { Duplex } from 'node:stream';

/**
 * The end of a comms connection: an HTTP/2 session and the socket under it.
 *
 * Node emits a destroyed session's 'error' and 'close' only once nghttp2's last write has
 * completed, and it leaves the socket open meanwhile. When a write can never complete (a
 * half-open link whose send buffer is full, or a socket reset with a write pending) the
 * session stays destroyed-but-not-closed for ever: no event, heartbeat stopped, and a
 * polling Tentacle that waits for the end never dials again. Seen in CI: after a
 * forwarder reset the link in the middle of a push, the Tentacle logged nothing and was
 * still "connected" 75 s later; test/comms/connection-end.test.ts reproduces it with a
 * socket whose writes never complete. So ending a connection destroys the socket too, and
 * the socket's own 'close' ends the connection, whichever comes first.
 */
export class ConnectionEnd {
  /** Resolves once the connection is over, with the reason if it failed. */
  readonly closed: Promise<Error | undefined>;
  private failure: Error | undefined;

  /** `onEnd` runs once, before `closed` resolves. */
  constructor(
    private readonly session: Http2Session,
    private readonly socket: Duplex,
    onEnd: () => void,
  ) {
    socket.on('error', (err: Error) => (this.failure ??= err));
    this.closed = new Promise((resolve) => {
      let ended = false;
      const end = (): void => {
        if (ended) return;
        ended = true;
        if (!session.destroyed) session.destroy();
        socket.destroy();
        onEnd();
        resolve(this.failure);
      };
      session.once('close', end);
      socket.once('close', end);
    });
  }

  /** Records why the connection failed (a session error); the first reason wins. */
  failed(err: Error): void {
    this.failure ??= err;
  }

  /** Ends the connection now, whatever is still being written. */
  destroy(reason?: Error): void {
    if (reason) this.failed(reason);
    this.session.destroy(reason);
    this.socket.destroy();
  }
}

import type { Http2Session } from 'node:http2';
import type { Duplex } from 'node:stream';

/** How long a connection ended by hand may take to report its close before it counts as over anyway. */
const CLOSE_GRACE_MS = 1000;

/**
 * The end of a comms connection: an HTTP/2 session and the socket under it.
 *
 * Node emits a destroyed session's 'error' and 'close' only once nghttp2's last write has
 * completed, and it leaves the socket open meanwhile. When a write can never complete (a
 * half-open link whose send buffer is full, or a socket reset with a write pending) the
 * session stays destroyed-but-not-closed for ever: no event, and a polling Tentacle that
 * waits for the end never dials again. test/comms/connection-end.test.ts reproduces it with
 * a socket whose writes never complete. So ending a connection destroys the socket too; the
 * socket's own 'close' ends the connection, whichever comes first; and a connection ended
 * by hand (a heartbeat verdict, a close) or found destroyed by the heartbeat counts as over
 * after CLOSE_GRACE_MS even if neither event ever comes.
 */
export class ConnectionEnd {
  /** Resolves once the connection is over, with the reason if it failed. */
  readonly closed: Promise<Error | undefined>;
  private failure: Error | undefined;
  private end!: () => void;
  private grace: NodeJS.Timeout | undefined;

  /** `onEnd` runs once, before `closed` resolves. */
  constructor(
    private readonly session: Http2Session,
    private readonly socket: Duplex,
    onEnd: () => void,
  ) {
    socket.on('error', (err: Error) => (this.failure ??= err));
    this.closed = new Promise((resolve) => {
      let ended = false;
      this.end = () => {
        if (ended) return;
        ended = true;
        clearTimeout(this.grace);
        if (!session.destroyed) session.destroy();
        socket.destroy();
        onEnd();
        resolve(this.failure);
      };
      session.once('close', this.end);
      socket.once('close', this.end);
    });
  }

  /** Records why the connection failed (a session error); the first reason wins. */
  failed(err: Error): void {
    this.failure ??= err;
  }

  /** Ends the connection now, whatever is still being written; `closed` resolves within CLOSE_GRACE_MS. */
  destroy(reason?: Error): void {
    if (reason) this.failed(reason);
    if (!this.session.destroyed) this.session.destroy(reason);
    this.socket.destroy();
    this.grace ??= setTimeout(this.end, CLOSE_GRACE_MS);
  }
}

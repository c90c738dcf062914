import type { Http2Session } from 'node:http2';
import type { Duplex } from 'node:stream';
import { ReefError } from '../errors.js';

/**
 * Liveness judged by progress: a link is alive while bytes arrive from the peer, whatever
 * they are (DATA of a transfer, WINDOW_UPDATEs, a PING or its answer). Only when nothing at
 * all has arrived for `timeoutMs` is the link declared dead (a half-open TCP connection, a
 * silently dropping firewall), so a cut is noticed within the timeout instead of the
 * minutes TCP keepalive would take, while a slow link busy with a transfer is never
 * mistaken for a dead one: an answer to a PING may queue behind that transfer's data, the
 * data itself still arrives.
 *
 * After `intervalMs` of silence (or half the timeout, if that is shorter) the heartbeat
 * sends a PING, so that a live but idle link produces the traffic that proves it alive
 * (and the peer, receiving the PING, hears from us too). HTTP/2 sends PINGs ahead of any queued DATA frame, and the send pacer
 * (./rpc/pacing.ts) keeps a transfer's bytes in the socket and kernel below a fraction of
 * a second, so the PING is not starved by bulk data.
 *
 * `socket` is the session's socket: its `bytesRead` (a TLS socket's decrypted bytes)
 * counts every frame that arrives. A socket without that counter (an in-memory pair in
 * tests) falls back to the answers to our PINGs.
 * Returns a function that stops the heartbeat.
 */
export function startHeartbeat(
  session: Http2Session,
  socket: Duplex,
  { intervalMs, timeoutMs }: { intervalMs: number; timeoutMs: number },
  onDead: (err: ReefError) => void,
  /** The session was destroyed (by anyone): make sure the connection ends (src/comms/rpc/connection-end.ts). */
  onDestroyed: () => void = () => {},
): () => void {
  if (intervalMs <= 0) return () => {};
  const bytesRead = bytesReadOf(socket);
  let lastCount = bytesRead();
  let lastLifeAt = Date.now();
  let probeSentAt = -Infinity;
  const probeAfterMs = Math.min(intervalMs, timeoutMs / 2);
  // Checking is cheap (a counter read); checking often makes the verdict come close to the timeout.
  const tick = setInterval(check, Math.max(10, Math.min(intervalMs, timeoutMs) / 4));
  tick.unref();

  function check(): void {
    if (session.destroyed) {
      stop();
      onDestroyed();
      return;
    }
    if (session.closed) return stop(); // closing gracefully: its streams finish, then it ends
    const now = Date.now();
    const count = bytesRead();
    if (count !== lastCount) {
      lastCount = count;
      lastLifeAt = now;
    }
    const silentFor = now - lastLifeAt;
    if (silentFor >= timeoutMs) {
      stop();
      onDead(
        new ReefError(
          'REEF_HEARTBEAT_TIMEOUT',
          `Nothing arrived from the peer for ${silentFor} ms (heartbeat timeout ${timeoutMs} ms), not even the answer to a heartbeat PING; the link is considered dead.`,
        ),
      );
      return;
    }
    if (silentFor >= probeAfterMs && now - probeSentAt >= probeAfterMs) {
      probeSentAt = now;
      try {
        session.ping((err) => {
          if (!err) lastLifeAt = Math.max(lastLifeAt, Date.now());
        });
      } catch {
        // the session is closing; its own close handling takes over
      }
    }
  }

  function stop(): void {
    clearInterval(tick);
  }
  return stop;
}

/** The socket's count of bytes read, or a constant where it keeps none. */
function bytesReadOf(socket: Duplex): () => number {
  const counted = socket as Duplex & { bytesRead?: unknown };
  return typeof counted.bytesRead === 'number' ? () => counted.bytesRead as number : () => 0;
}

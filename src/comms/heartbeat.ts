import type { Http2Session } from 'node:http2';
import { ReefError } from '../errors.js';

/**
 * Pings the peer every `intervalMs`; a ping unanswered for `timeoutMs` means the link is
 * dead (a half-open TCP connection, a silently dropping firewall), so the link is noticed
 * within intervalMs + timeoutMs instead of the minutes TCP keepalive would take.
 * Returns a function that stops the heartbeat.
 */
export function startHeartbeat(
  session: Http2Session,
  { intervalMs, timeoutMs }: { intervalMs: number; timeoutMs: number },
  onDead: (err: ReefError) => void,
): () => void {
  if (intervalMs <= 0) return () => {};
  let waiting: NodeJS.Timeout | undefined;
  const tick = setInterval(() => {
    if (session.destroyed || session.closed) return stop();
    if (waiting) return; // the previous ping is still within its timeout
    waiting = setTimeout(() => {
      stop();
      onDead(new ReefError('REEF_HEARTBEAT_TIMEOUT', `The peer did not answer a heartbeat within ${timeoutMs} ms; the link is considered dead.`));
    }, timeoutMs);
    try {
      session.ping(() => {
        clearTimeout(waiting);
        waiting = undefined;
      });
    } catch {
      // the session is closing; its own close handling takes over
    }
  }, intervalMs);
  tick.unref();
  function stop() {
    clearInterval(tick);
    clearTimeout(waiting);
    waiting = undefined;
  }
  return stop;
}

import type { Http2Session, Settings } from 'node:http2';
import type { CommsLimits } from '../limits.js';

/**
 * Per-call receive window. Larger than HTTP/2's 64 KiB default so one transfer can fill a
 * fast link; windows are credit, not buffers, so idle connections cost nothing for it.
 */
const STREAM_WINDOW_BYTES = 1024 * 1024;
const SESSION_WINDOW_BYTES = 16 * 1024 * 1024;

export function http2Settings(limits: CommsLimits): Settings {
  return {
    enablePush: false,
    maxConcurrentStreams: limits.maxConcurrentCalls,
    initialWindowSize: STREAM_WINDOW_BYTES,
    // Headers carry only the method path and two small fields.
    maxHeaderListSize: 16 * 1024,
    headerTableSize: 1024,
  };
}

/** Widens the connection-level window; a session that died already has nothing to widen. */
export function widenSessionWindow(session: Http2Session): void {
  if (session.destroyed || session.closed) return;
  try {
    session.setLocalWindowSize(SESSION_WINDOW_BYTES);
  } catch {
    // closed between the check and the call; its close handling takes over
  }
}

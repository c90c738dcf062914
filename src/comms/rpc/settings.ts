import type { Settings } from 'node:http2';
import type { CommsLimits } from '../limits.js';

/**
 * Per-call receive window. Larger than HTTP/2's 64 KiB default so one transfer can fill a
 * fast link; windows are credit, not buffers, so idle connections cost nothing for it.
 */
const STREAM_WINDOW_BYTES = 1024 * 1024;
export const SESSION_WINDOW_BYTES = 16 * 1024 * 1024;

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

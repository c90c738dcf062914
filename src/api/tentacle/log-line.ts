import { MAX_LOG_LINE_BYTES } from './limits.js';

/**
 * A log line as the server stores it: a Tentacle's line longer than MAX_LOG_LINE_BYTES
 * code units (only a faulty or hostile Tentacle sends one: its own lines are cut at that
 * many raw bytes) is cut there, with a marker saying how much was left out. Cutting rather
 * than refusing the answer means such output cannot fail the task.
 */
export function cutLogLine(text: string): string {
  if (text.length <= MAX_LOG_LINE_BYTES) return text;
  // Never split a surrogate pair: a lone half would be stored as garbage.
  const end = isHighSurrogate(text.charCodeAt(MAX_LOG_LINE_BYTES - 1)) ? MAX_LOG_LINE_BYTES - 1 : MAX_LOG_LINE_BYTES;
  return `${text.slice(0, end)}${cutMarker(text.length - end)}`;
}

/** Ends a line cut by the server. */
function cutMarker(omittedUnits: number): string {
  return ` [… line cut by the Reef server: ${omittedUnits} more characters over the ${MAX_LOG_LINE_BYTES}-character line limit]`;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

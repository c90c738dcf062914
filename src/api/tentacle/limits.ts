/** Sizes both ends of the Tentacle contract agree on; the server refuses answers beyond them. */

/**
 * Longest line of a script's log: the Tentacle cuts longer output into several lines of at
 * most this many raw bytes. The server measures a line it receives by its length in
 * UTF-16 code units, which never exceeds the raw bytes it was decoded from, so a line the
 * Tentacle cut is never cut again; a longer one is cut by the server, with a marker.
 */
export const MAX_LOG_LINE_BYTES = 64 * 1024;

/**
 * What the lines of one scripts.status answer may add up to, as JSON (escaping included:
 * a NUL byte of output is six bytes, "\u0000"). The Tentacle stops adding lines before
 * passing it, answers at least one line, and sets `more`. One line is at most
 * 6 x MAX_LOG_LINE_BYTES as JSON, so an answer stays far below the comms message limit.
 */
export const STATUS_ANSWER_BUDGET_BYTES = 1024 * 1024;

/** Lines a scripts.status answer holds when the call does not say (maxLines). */
export const DEFAULT_STATUS_LINES = 1000;

/** The most lines one scripts.status call may ask for. */
export const MAX_STATUS_LINES = 10_000;

/** Longest error or description text in an answer (a spawn error, a version string's neighbours). */
export const MAX_MESSAGE_CHARS = 16 * 1024;

/** Longest path in an answer (PATH_MAX on Linux). */
export const MAX_PATH_CHARS = 4096;

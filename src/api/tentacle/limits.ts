/** Sizes both ends of the Tentacle contract agree on; the server refuses answers beyond them. */

/** Longest line of a script's log, in UTF-8 bytes; longer output is cut into several lines. */
export const MAX_LOG_LINE_BYTES = 64 * 1024;

/** Lines a scripts.status answer holds when the call does not say (maxLines). */
export const DEFAULT_STATUS_LINES = 1000;

/** The most lines one scripts.status call may ask for. */
export const MAX_STATUS_LINES = 10_000;

/** Longest error or description text in an answer (a spawn error, a version string's neighbours). */
export const MAX_MESSAGE_CHARS = 16 * 1024;

/** Longest path in an answer (PATH_MAX on Linux). */
export const MAX_PATH_CHARS = 4096;

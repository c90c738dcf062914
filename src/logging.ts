import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Structured logs go to stderr as JSON lines (stdout is for command output that scripts
 * read, such as a printed thumbprint or API key). REEF_LOG_LEVEL picks the level;
 * tests run silent unless they ask otherwise.
 */
export function createLogger(name: string, level = process.env.REEF_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}

/** A logger that drops everything, for library use where the caller passed none. */
export const silentLogger: Logger = pino({ level: 'silent' });

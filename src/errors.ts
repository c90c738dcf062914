/**
 * One base error for everything Reef throws on purpose. `code` is stable (tests, API
 * clients and logs match on it); `message` says what happened and what to do next.
 */
export class ReefError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ReefError';
    this.code = code;
  }
}

export function isReefError(err: unknown, code?: string): err is ReefError {
  return err instanceof ReefError && (code === undefined || err.code === code);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

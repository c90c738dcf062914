import { ReefError } from '../../errors.js';

// In a module of its own: the CLI parses the option without loading the metrics code.

/**
 * `HOST:PORT` of `--metrics-listen` (`127.0.0.1:9464`, `[::1]:9464`, `0.0.0.0:9464`). The host
 * is required: where the metrics are served without credentials must be a choice.
 */
export function parseListenAddress(value: string, option: string): { host: string; port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new ReefError(
      'REEF_INVALID_ARGUMENT',
      `${option} must be HOST:PORT, such as 127.0.0.1:9464 or [::1]:9464 (got "${value}"). The host is required: metrics there need no credentials, so choose a loopback or private address.`,
    );
  }
  return { host: match[1] ?? match[2]!, port };
}

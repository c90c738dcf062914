import { Option, type Command } from 'commander';
import type { ApiClient } from '../api/client.js';
import { ReefError } from '../errors.js';
import { addOptionAlias } from './common.js';

/**
 * How every `reef` command that talks to the REST API finds its server. The options sit on
 * each command (not on the root program) so `reef server run` and other local commands keep
 * their own option names, and `reef <group> <command> --help` shows everything that applies.
 */

export interface ConnectionOpts {
  server?: string;
  apiKey?: string;
  serverThumbprint?: string;
  caFile?: string;
  json?: boolean;
}

export function addConnectionOptions(command: Command): Command {
  command
    .addOption(new Option('--server <url>', 'Reef server, https://host[:port]').env('REEF_SERVER'))
    .addOption(new Option('--api-key <key>', 'API key (create one with "reef apikey create")').env('REEF_API_KEY'))
    .addOption(
      new Option(
        '--server-thumbprint <thumbprint>',
        'trust exactly this server certificate (SHA-256; "reef server show-thumbprint"); without it the certificate must chain to a public CA',
      ).env('REEF_SERVER_THUMBPRINT'),
    )
    .addOption(
      new Option(
        '--ca-file <file>',
        "trust certificates this CA issued (PEM), besides the public CAs: for a portal with your organisation's certificate; instead of --server-thumbprint",
      ).env('REEF_CA_FILE'),
    )
    .option('--json', 'print machine-readable JSON on stdout');
  addOptionAlias(command, '--apiKey <key>', 'apiKey');
  return command;
}

/**
 * An API client for the options, or a clear error naming the flag or variable that is missing.
 * The client code loads here, not with the CLI: it brings the API contract's schemas (zod),
 * which `reef --help` and the server's own commands do not need.
 */
export async function connect(opts: ConnectionOpts, requestTimeoutMs?: number): Promise<ApiClient> {
  const server = opts.server?.trim();
  if (!server) {
    throw new ReefError('REEF_INVALID_ARGUMENT', 'No Reef server given: pass --server https://host[:port] or set REEF_SERVER.');
  }
  const apiKey = opts.apiKey?.trim();
  if (!apiKey) {
    throw new ReefError(
      'REEF_UNAUTHENTICATED',
      'No API key given: pass --api-key KEY or set REEF_API_KEY (an administrator creates one with "reef apikey create").',
    );
  }
  const thumbprint = opts.serverThumbprint?.trim();
  const caFile = opts.caFile?.trim();
  if (thumbprint && caFile) {
    throw new ReefError(
      'REEF_INVALID_ARGUMENT',
      'Give --server-thumbprint (REEF_SERVER_THUMBPRINT) or --ca-file (REEF_CA_FILE), not both: a thumbprint trusts exactly one certificate, a CA file what that CA issues.',
    );
  }
  const { ApiClient } = await import('../api/client.js');
  const trustedCas = caFile ? await (await import('../pki/ca-file.js')).readCaFile(caFile) : undefined;
  return new ApiClient({
    server,
    apiKey,
    ...(thumbprint ? { serverThumbprint: thumbprint } : {}),
    ...(trustedCas ? { trustedCas } : {}),
    ...(requestTimeoutMs !== undefined ? { timeoutMs: requestTimeoutMs } : {}),
  });
}

/** List endpoints answer `{ items: [...] }`; a bare array is accepted too. */
export function itemsOf<T>(body: unknown): T[] {
  if (Array.isArray(body)) return body as T[];
  const items = (body as { items?: unknown } | undefined)?.items;
  if (Array.isArray(items)) return items as T[];
  throw new ReefError('REEF_BAD_RESPONSE', 'The server answered a list request without an "items" array; is it a Reef server of the same version?');
}

export function httpStatus(err: unknown): number | undefined {
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : undefined;
}

/** A path segment: names may hold spaces, slashes and other characters a URL reserves. */
export function segment(value: string): string {
  return encodeURIComponent(value);
}

export function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(key, String(value));
  const text = search.toString();
  return text ? `?${text}` : '';
}

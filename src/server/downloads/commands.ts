import type { IncomingMessage } from 'node:http';
import { DOWNLOADS_PATH, SHA256SUMS } from './names.js';

/**
 * The one command a machine runs to fetch a file from the server, printed at start-up, on
 * the downloads page and in docs/operations.md:
 *
 *   curl --pinnedpubkey 'sha256//<pin>' --insecure -fsSLO <file URL> -O <SHA256SUMS URL> \
 *     && sha256sum -c --ignore-missing SHA256SUMS
 *
 * The server's certificate is self-signed (Tentacles pin its thumbprint; no CA is
 * involved), so curl's CA check cannot pass and `--insecure` switches it off. That is safe
 * only because of `--pinnedpubkey`, which curl still enforces with `--insecure`: it
 * compares the key the server presents with the pin and aborts before sending the request
 * when they differ (exit 90). The pin is taken from the server's own certificate, so the
 * command trusts exactly this server; never use `--insecure` without it.
 * `sha256sum -c` then checks the bytes against the digests the same pinned server lists.
 */
export function fetchCommand(baseUrl: string, pin: string, file: string): string {
  const url = (name: string) => `${baseUrl}${DOWNLOADS_PATH}/${encodeURIComponent(name)}`;
  return `curl --pinnedpubkey '${pin}' --insecure -fsSLO ${url(file)} -O ${url(SHA256SUMS)} && sha256sum -c --ignore-missing ${SHA256SUMS}`;
}

/** The file a command is shown for: the x86-64 single-executable Tentacle if present, else the first. */
export function exampleFile(names: readonly string[]): string | undefined {
  return (
    names.find((n) => /^reef-tentacle-.*-linux-x64$/.test(n)) ??
    names.find((n) => n.startsWith('reef-tentacle')) ??
    names[0]
  );
}

/** `https://host:port` for a host name or address (IPv6 in brackets). */
export function httpsBaseUrl(host: string, port: number): string {
  const shown = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return port === 443 ? `https://${shown}` : `https://${shown}:${port}`;
}

/** The https:// origin a request was sent to (its Host header when well-formed, else the socket's address), for commands shown back to it. */
export function requestBaseUrl(req: IncomingMessage): string {
  const host = req.headers.host;
  if (host && /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(host)) return `https://${host}`;
  return httpsBaseUrl(req.socket.localAddress ?? 'localhost', req.socket.localPort ?? 443);
}

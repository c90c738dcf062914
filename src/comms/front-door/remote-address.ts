import type { Duplex } from 'node:stream';

/**
 * The client address a PROXY protocol header announced, for sockets that came through
 * nginx or HAProxy. Kept beside the socket (and found again from the TLS socket wrapping
 * it), so logs, rate limits and the machine list show the real client, not the proxy.
 */
const announced = new WeakMap<object, string>();

export function setAnnouncedAddress(socket: Duplex, address: string): void {
  announced.set(socket, address);
}

/** `address:port` of the real client: the announced one, else the socket's own. */
export function remoteAddressOf(socket: Duplex & { remoteAddress?: string; remotePort?: number; _parent?: Duplex }): string {
  const found = announced.get(socket) ?? (socket._parent ? announced.get(socket._parent) : undefined);
  if (found) return found;
  const own = socket.remoteAddress ?? (socket._parent as { remoteAddress?: string } | undefined)?.remoteAddress;
  const port = socket.remotePort ?? (socket._parent as { remotePort?: number } | undefined)?.remotePort;
  return own ? `${own}:${port ?? '?'}` : 'unknown';
}

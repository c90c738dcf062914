import type { Duplex } from 'node:stream';

/**
 * The client address a PROXY protocol header or a WebSocket request announced, kept beside
 * the raw stream it arrived on, so logs, rate limits, the audit log and the machine list
 * show the real client rather than a proxy or "unknown".
 */
export interface RemoteEndpoint {
  /** An IPv4 or IPv6 address, `::ffff:` prefix removed. */
  address: string;
  port: number | undefined;
}

const announced = new WeakMap<object, RemoteEndpoint>();

export function setAnnouncedAddress(stream: Duplex, endpoint: RemoteEndpoint): void {
  announced.set(stream, { address: normalizeAddress(endpoint.address), port: endpoint.port });
}

type Wrapped = Duplex & {
  remoteAddress?: string;
  remotePort?: number;
  _parent?: Duplex | null;
  // A TLS socket over a non-socket stream (a WebSocket) reaches that stream only through
  // Node's internal handle; used best effort, for display.
  _handle?: { _parentWrap?: { stream?: Duplex } } | null;
};

/** The real client: the announced endpoint, else the socket's own; undefined when neither is known. */
export function remoteEndpointOf(socket: Wrapped): RemoteEndpoint | undefined {
  for (const candidate of [socket, socket._parent, socket._handle?._parentWrap?.stream]) {
    const found = candidate ? announced.get(candidate) : undefined;
    if (found) return found;
  }
  const own = socket.remoteAddress ?? (socket._parent as Wrapped | null | undefined)?.remoteAddress;
  const port = socket.remotePort ?? (socket._parent as Wrapped | null | undefined)?.remotePort;
  return own ? { address: normalizeAddress(own), port } : undefined;
}

/** `address:port` of the real client (see remoteEndpointOf), or `unknown`. */
export function remoteAddressOf(socket: Wrapped): string {
  const endpoint = remoteEndpointOf(socket);
  return endpoint ? `${endpoint.address}:${endpoint.port ?? '?'}` : 'unknown';
}

/** `::ffff:10.0.0.1` and `10.0.0.1` are one client. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

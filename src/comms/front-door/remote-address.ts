import type { Duplex } from 'node:stream';

/**
 * The client address a PROXY protocol header or a WebSocket request announced, kept beside
 * the raw stream it arrived on, so logs, rate limits and the machine list show the real
 * client rather than a proxy or "unknown".
 */
const announced = new WeakMap<object, string>();

export function setAnnouncedAddress(stream: Duplex, address: string): void {
  announced.set(stream, address);
}

type Wrapped = Duplex & {
  remoteAddress?: string;
  remotePort?: number;
  _parent?: Duplex | null;
  // A TLS socket over a non-socket stream (a WebSocket) reaches that stream only through
  // Node's internal handle; used best effort, for display.
  _handle?: { _parentWrap?: { stream?: Duplex } } | null;
};

/** `address:port` of the real client: the announced one, else the socket's own. */
export function remoteAddressOf(socket: Wrapped): string {
  for (const candidate of [socket, socket._parent, socket._handle?._parentWrap?.stream]) {
    const found = candidate ? announced.get(candidate) : undefined;
    if (found) return found;
  }
  const own = socket.remoteAddress ?? (socket._parent as Wrapped | null | undefined)?.remoteAddress;
  const port = socket.remotePort ?? (socket._parent as Wrapped | null | undefined)?.remotePort;
  return own ? `${own}:${port ?? '?'}` : 'unknown';
}

import http from 'node:http';
import type { Duplex } from 'node:stream';

/** The page's heading; the admin CLI recognises a comms port by it (src/api/client.ts). */
export const FRIENDLY_PAGE_TITLE = 'Reef comms listener';

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Reef</title></head>
<body><h1>${FRIENDLY_PAGE_TITLE}</h1>
<p>This port is configured to accept Reef Tentacle connections. If you can read this page,
the network path from here to the listener works.</p>
<p>Tentacles connect with mutual TLS and pinned certificate thumbprints; a browser
needs nothing else here.</p></body></html>
`;

const HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-length': String(Buffer.byteLength(PAGE)),
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  connection: 'close',
};

/**
 * The page a browser or `curl -k` gets from a comms port: proof that the path works,
 * never a hang or a reset. Every request, whatever its method or path, gets the same page.
 *
 * The whole exchange has `timeoutMs`: the HTTP server is fed sockets and never listens, and
 * Node starts its own header and request timeouts only on 'listening', so a client
 * trickling its headers would otherwise hold the socket for ever.
 */
export function createFriendlyPageServer(timeoutMs: number): { serve(socket: Duplex): void; close(): void } {
  const server = http.createServer(writeFriendlyPage);
  server.keepAliveTimeout = 1000;
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  return {
    serve(socket) {
      const deadline = setTimeout(() => socket.destroy(), timeoutMs);
      socket.once('close', () => clearTimeout(deadline));
      server.emit('connection', socket);
    },
    close() {
      server.closeAllConnections();
    },
  };
}

/** Answers one HTTP request with the friendly page (also used on the WebSocket path). */
export function writeFriendlyPage(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(200, HEADERS);
  res.end(req.method === 'HEAD' ? undefined : PAGE);
}

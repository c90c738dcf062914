import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../../logging.js';
import { HttpError, sendError } from '../http/errors.js';
import { drainRequest, SECURITY_HEADERS, setSecurityHeaders } from '../http/respond.js';

/**
 * Bounds of a request's head on the HTTPS port, and the answers past them: the usual JSON
 * error with the usual security headers, never Node's bare `431` or a connection closed
 * without a word.
 *
 * Node's parser knows one bound only, `maxHeaderSize`, over the request line and the header
 * fields together, and reports it as a parse error (the 'clientError' event) before any
 * request exists. So the parser gets a generous bound (MAX_HEAD_BYTES), and the real ones
 * are checked on the parsed request, where the URL and the header fields can be told apart
 * (414 and 431). Only a head past the parser's bound is answered from 'clientError'.
 */

/** The request target (path and query). Longer: 414 REEF_URL_TOO_LONG. */
export const MAX_URL_BYTES = 16 * 1024;
/** Header fields together, as sent (`name: value` lines). Larger: 431 REEF_HEADERS_TOO_LARGE. */
export const MAX_HEADER_FIELDS_BYTES = 16 * 1024;
/** The parser's bound (the https.Server's `maxHeaderSize`): held in memory per connection until the head ends. */
export const MAX_HEAD_BYTES = 64 * 1024;

/** How long an error answer may take to leave before the socket is destroyed anyway. */
const ANSWER_DEADLINE_MS = 5_000;

const KIB = 1024;

/** Answers a request whose URL or header fields are over their bound; true when it did. */
export function refuseOversizedHead(req: IncomingMessage, res: ServerResponse): boolean {
  const error = oversizedHeadError(req);
  if (!error) return false;
  setSecurityHeaders(res);
  // The rest of this connection's bytes cannot be trusted to frame a next request well.
  res.setHeader('connection', 'close');
  sendError(res, error, silentLogger, {}); // a known error: sendError logs only unexpected ones
  drainRequest(req);
  return true;
}

function oversizedHeadError(req: IncomingMessage): HttpError | undefined {
  const url = req.url ?? '';
  if (Buffer.byteLength(url) > MAX_URL_BYTES) return urlTooLong(Buffer.byteLength(url));
  let fields = 0;
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) fields += Buffer.byteLength(req.rawHeaders[i]!) + Buffer.byteLength(req.rawHeaders[i + 1]!) + 4;
  if (fields > MAX_HEADER_FIELDS_BYTES) return headersTooLarge(`The request's header fields take ${fields} bytes`);
  return undefined;
}

function urlTooLong(size: number): HttpError {
  return new HttpError('REEF_URL_TOO_LONG', `The request's URL takes ${size} bytes, more than the limit of ${MAX_URL_BYTES / KIB} KiB. Send long values in a request body instead.`);
}

function headersTooLarge(what: string): HttpError {
  return new HttpError('REEF_HEADERS_TOO_LARGE', `${what}, more than the limit of ${MAX_HEADER_FIELDS_BYTES / KIB} KiB.`);
}

/**
 * Answers the parser's errors on the HTTPS server's connections ('clientError': a head past
 * MAX_HEAD_BYTES, a malformed request) with the JSON error and security headers, then ends
 * the connection once the answer is written. Node's default handler writes a bare status
 * line and destroys the socket at once, which over TLS often loses even that.
 */
export function answerClientErrors(server: https.Server, logger: Logger): void {
  const answered = new WeakSet<Duplex>();
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // Answered already: the parser reports each further chunk the client sends. Those are
    // read and dropped until the client has read the answer and closes, or the deadline:
    // destroying now would reset the connection and could take the answer with it.
    if (answered.has(socket)) return;
    // A response already started on this connection (a pipelined request failed after it): nothing valid can follow.
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (!socket.writable || err.code === 'ECONNRESET' || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    answered.add(socket);
    const error = clientErrorAnswer(err);
    logger.debug({ code: err.code, status: error.status }, 'https: request refused before it was parsed');
    const deadline = setTimeout(() => socket.destroy(), ANSWER_DEADLINE_MS);
    deadline.unref();
    socket.once('close', () => clearTimeout(deadline));
    socket.end(rawJsonResponse(error));
  });
}

function clientErrorAnswer(err: NodeJS.ErrnoException): HttpError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      // Past the parser's bound nothing tells the request line from the header fields (Node
      // reports neither, and TLS hands the parser 16 KiB at a time), so the head counts as a whole.
      return headersTooLarge(
        `The request's head (its request line and header fields together) is over ${MAX_HEAD_BYTES / KIB} KiB; the URL may take ${MAX_URL_BYTES / KIB} KiB and the header fields`,
      );
    default:
      return new HttpError('REEF_BAD_HTTP', `The request is not well-formed HTTP/1.1 (${err.code ?? 'parse error'}).`);
  }
}

/** A whole HTTP/1.1 answer as bytes, for a socket that has no ServerResponse. */
function rawJsonResponse(error: HttpError): Buffer {
  const body = Buffer.from(JSON.stringify({ error: { code: error.code, message: error.message } }));
  const headers: Record<string, string | number> = {
    ...SECURITY_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'content-length': body.length,
    connection: 'close',
  };
  const head = [`HTTP/1.1 ${error.status} ${REASONS[error.status] ?? 'Error'}`, ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)].join('\r\n');
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), body]);
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
};

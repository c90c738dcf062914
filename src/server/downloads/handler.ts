import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { errorMessage, ReefError } from '../../errors.js';
import type { Logger } from '../../logging.js';
import { drainRequest, SECURITY_HEADERS } from '../http/respond.js';
import { toHtml } from '../portal/html.js';
import { setPortalHeaders, type SignedIn } from '../portal/layout.js';
import { requestBaseUrl } from './commands.js';
import { decideRange, modifiedSince, noneMatch, rangeStillValid } from './conditional.js';
import type { DownloadsFolder, OpenDownload } from './folder.js';
import { installScript } from '../install/tentacle-install.js';
import { DOWNLOADS_PATH, INDEX_JSON, INSTALL_SCRIPT, SHA256SUMS } from './names.js';
import { downloadsPage, indexJson, sha256sums } from './views.js';

export interface DownloadsHandlerOptions {
  folder: DownloadsFolder;
  /** `sha256//...` of the certificate the HTTPS port presents now (it may be reloaded), for the command the page shows. */
  publicKeyPin: () => string;
  logger: Logger;
  /** The portal user behind a request's session cookie, if any (the page then shows the navigation). */
  viewer?(req: IncomingMessage): Promise<SignedIn | undefined>;
}

const ALLOW = 'GET, HEAD';

/**
 * `/downloads/...` on the HTTPS port, anonymous and read-only: machines fetch the Tentacle
 * before they hold any credential (docs/security.md says why that is safe). Returns false
 * for every other path, which the caller then routes on.
 *
 * The path is taken from the raw request target, before any normalisation: a `..` segment
 * in any spelling (`%2e%2e`, `%2f`, `\`, `%5c`, NUL) either makes the path not start with
 * `/downloads/` (so it is not served from here) or leaves a name that is checked, after
 * percent-decoding, by `isServableName`, which admits no separator, no dot at the start and
 * no control character. The folder then opens only regular files directly inside it.
 */
export function createDownloadsHandler(options: DownloadsHandlerOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { folder, logger } = options;
  return (req, res) => {
    const rest = downloadsPathOf(req.url ?? '/');
    if (rest === undefined) return false;
    handle(req, res, rest).catch((err: unknown) => {
      logger.error({ err, path: (req.url ?? '').slice(0, 200) }, 'downloads: unexpected error');
      if (res.headersSent) res.destroy();
      else sendText(res, 500, 'The server failed to answer; the cause is in its log.\n');
    });
    return true;
  };

  async function handle(req: IncomingMessage, res: ServerResponse, rest: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', ALLOW);
      sendText(res, 405, `${DOWNLOADS_PATH} is read-only: it accepts ${ALLOW}.\n`);
      drainRequest(req);
      return;
    }
    if (rest === '') {
      res.statusCode = 301;
      res.setHeader('location', `${DOWNLOADS_PATH}/`);
      res.setHeader('content-length', 0);
      res.end();
      return;
    }
    const raw = rest.slice(1);
    if (raw === '') return sendPage(req, res);
    if (raw.includes('/') || raw.includes('\\')) return notFound(res);
    let name: string;
    try {
      name = decodeURIComponent(raw);
    } catch {
      return sendText(res, 400, 'The file name is not valid percent-encoding.\n');
    }
    if (name === INDEX_JSON) return sendMachineIndex(res, 'application/json; charset=utf-8', JSON.stringify(indexJson(await folder.list()), null, 2) + '\n');
    if (name === SHA256SUMS) return sendMachineIndex(res, 'text/plain; charset=utf-8', sha256sums(await folder.list()));
    if (name === INSTALL_SCRIPT) return sendMachineIndex(res, 'text/plain; charset=utf-8', installScript());
    let file: OpenDownload | undefined;
    try {
      file = await folder.open(name);
    } catch (err) {
      if (err instanceof ReefError && err.code === 'REEF_DOWNLOAD_CHANGED') {
        res.setHeader('retry-after', '5');
        return sendText(res, 503, `${name} is changing right now (still being copied in?). Try again in a few seconds.\n`);
      }
      throw err;
    }
    if (!file) return notFound(res);
    try {
      await sendFile(req, res, file);
    } finally {
      await file.handle.close();
    }
  }

  async function sendPage(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const [listing, user] = await Promise.all([folder.list(), options.viewer?.(req)]);
    const page = downloadsPage({ listing, baseUrl: requestBaseUrl(req), pin: options.publicKeyPin(), user });
    const body = Buffer.from(toHtml(page), 'utf8');
    setPortalHeaders(res);
    res.statusCode = 200;
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.setHeader('content-length', body.length);
    res.end(body);
  }

  async function sendFile(req: IncomingMessage, res: ServerResponse, file: OpenDownload): Promise<void> {
    const etag = `"${file.sha256}"`;
    setFileHeaders(res);
    res.setHeader('etag', etag);
    res.setHeader('last-modified', file.modified.toUTCString());
    // RFC 9530: the digest of the whole file, also on a 206 (the part's own would be Content-Digest).
    res.setHeader('repr-digest', `sha-256=:${Buffer.from(file.sha256, 'hex').toString('base64')}:`);
    res.setHeader('x-checksum-sha256', file.sha256);
    const inm = noneMatch(header(req, 'if-none-match'), etag);
    if (inm === false || (inm === undefined && !modifiedSince(header(req, 'if-modified-since'), file.modified))) {
      res.statusCode = 304;
      res.end();
      return;
    }
    res.setHeader('content-type', 'application/octet-stream');
    res.setHeader('content-disposition', `attachment; filename="${file.name}"`);
    res.setHeader('accept-ranges', 'bytes');
    const range = rangeStillValid(header(req, 'if-range'), etag, file.modified) ? decideRange(header(req, 'range'), file.size) : { kind: 'full' as const };
    if (range.kind === 'unsatisfiable') {
      res.statusCode = 416;
      res.setHeader('content-range', `bytes */${file.size}`);
      res.setHeader('content-length', 0);
      res.end();
      return;
    }
    const start = range.kind === 'partial' ? range.start : 0;
    const end = range.kind === 'partial' ? range.end : file.size - 1;
    res.statusCode = range.kind === 'partial' ? 206 : 200;
    if (range.kind === 'partial') res.setHeader('content-range', `bytes ${start}-${end}/${file.size}`);
    res.setHeader('content-length', end - start + 1);
    if (req.method === 'HEAD' || end < start) {
      res.end();
      return;
    }
    // The file is read as the socket drains (pipeline's backpressure), from the handle whose
    // bytes were hashed: a file renamed over meanwhile does not change what this answer sends.
    const remote = req.socket.remoteAddress;
    try {
      await pipeline(file.handle.createReadStream({ start, end, autoClose: false }), res);
      logger.debug({ file: file.name, remote, status: res.statusCode, start, end }, 'downloads: sent');
    } catch (err) {
      logger.debug({ file: file.name, remote, start, end, err: errorMessage(err) }, 'downloads: transfer cut off');
    }
  }

  function sendMachineIndex(res: ServerResponse, type: string, text: string): void {
    setFileHeaders(res);
    const body = Buffer.from(text, 'utf8');
    res.statusCode = 200;
    res.setHeader('content-type', type);
    res.setHeader('content-length', body.length);
    res.end(body);
  }
}

/**
 * The part of a request target after `/downloads` ('' or starting with '/'), or undefined
 * when the target is elsewhere. Works on the raw target (query dropped; an absolute-form
 * target's scheme and authority dropped), never on a normalised URL, which would have
 * resolved `..` segments already.
 */
export function downloadsPathOf(target: string): string | undefined {
  const path = target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').split(/[?#]/, 1)[0]!;
  if (path !== DOWNLOADS_PATH && !path.startsWith(`${DOWNLOADS_PATH}/`)) return undefined;
  return path.slice(DOWNLOADS_PATH.length);
}

/** The API's defences (nosniff, no framing, a CSP that allows nothing), but revalidated caching instead of none. */
function setFileHeaders(res: ServerResponse): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
  res.setHeader('cache-control', 'no-cache');
}

function sendText(res: ServerResponse, status: number, text: string): void {
  setFileHeaders(res);
  const body = Buffer.from(text, 'utf8');
  res.statusCode = status;
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.setHeader('content-length', body.length);
  res.end(body);
}

function notFound(res: ServerResponse): void {
  sendText(res, 404, `No such download. The files this server serves are listed at ${DOWNLOADS_PATH}/.\n`);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Host as the client sent it, when it is a plain host[:port]; else the address the connection reached. */

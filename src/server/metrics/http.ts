/**
 * Serving a scrape: on the HTTPS port behind an API key (routes/metrics.ts), and on the
 * optional plain-HTTP metrics address without one (`--metrics-listen`, for a Prometheus on
 * the same host or private network; docs/security.md says why that is a separate address).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Logger } from '../../logging.js';
import { setSecurityHeaders } from '../http/respond.js';
import { METRICS_CONTENT_TYPE, type ServerMetrics } from './metrics.js';

export const METRICS_PATH = '/metrics';

/** Below this a scrape goes uncompressed: gzip would save less than it costs. */
const GZIP_FROM_BYTES = 4096;
const gzipped = promisify(gzip);

/** Answers a scrape (GET or HEAD) with the node's metrics, gzipped when the scraper accepts it (Prometheus does). */
export async function sendMetrics(req: IncomingMessage, res: ServerResponse, metrics: ServerMetrics): Promise<void> {
  let body = Buffer.from(await metrics.render(), 'utf8');
  res.setHeader('vary', 'accept-encoding');
  if (body.length >= GZIP_FROM_BYTES && acceptsGzip(req.headers['accept-encoding'])) {
    body = await gzipped(body);
    res.setHeader('content-encoding', 'gzip');
  }
  res.statusCode = 200;
  res.setHeader('content-type', METRICS_CONTENT_TYPE);
  res.setHeader('content-length', body.length);
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Whether an Accept-Encoding header allows gzip (listed, or `*`, without q=0). */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== '*') return false;
    const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    return q === undefined || Number(q) > 0;
  });
}

/** A plain-HTTP listener that serves /metrics and nothing else. */
export interface ScrapeListener {
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
}

/** Bounds of the plain listener: a scraper needs one connection and answers in seconds. */
const MAX_CONNECTIONS = 64;
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;

export function createScrapeListener(metrics: ServerMetrics, logger: Logger): ScrapeListener {
  const sockets = new Set<Socket>();
  const server = http.createServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS }, (req, res) => {
    setSecurityHeaders(res);
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path !== METRICS_PATH) return sendText(res, 404, `This address serves only ${METRICS_PATH}.\n`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return sendText(res, 405, `${METRICS_PATH} accepts GET and HEAD.\n`);
    }
    sendMetrics(req, res, metrics).catch((err: unknown) => {
      logger.error({ err }, 'metrics: scrape failed');
      if (res.headersSent) res.destroy();
      else sendText(res, 500, 'The server failed to render its metrics; the cause is in its log.\n');
    });
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  return {
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    close() {
      if (!server.listening) return Promise.resolve();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      return closed;
    },
  };
}

function sendText(res: ServerResponse, status: number, text: string): void {
  const body = Buffer.from(text, 'utf8');
  res.statusCode = status;
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.setHeader('content-length', body.length);
  res.end(body);
}

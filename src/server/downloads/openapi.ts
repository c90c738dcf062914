import type { ResponseConfig, RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { BINARY } from '../http/openapi.js';
import { DOWNLOADS_PATH, INDEX_JSON, INSTALL_SCRIPT, SHA256SUMS } from './names.js';
import { DownloadsIndex } from './views.js';

/**
 * The /downloads routes as the OpenAPI document describes them (handler.ts serves them; it
 * has no route table, so this list says what it answers, and test/server/http/openapi.test.ts
 * checks a real server's answers against it). Anonymous: `security: []`. GET and HEAD each.
 */

const text = (description: string): ResponseConfig => ({ description, content: { 'text/plain': { schema: { type: 'string' } } } });
const header = (description: string) => ({ description, schema: { type: 'string' as const } });

const FILE_HEADERS = {
  ETag: header('`"<sha256 hex>"`, strong.'),
  'Repr-Digest': header('`sha-256=:<base64>:` of the whole file (RFC 9530), on 206 too.'),
  'X-Checksum-Sha256': header('The same SHA-256 in hexadecimal.'),
  'Last-Modified': header("The file's modification time."),
};

// zod's own describe(): this module may be loaded before src/api/contract.ts adds .openapi().
const fileName = z.object({
  name: z.string().describe('A file directly in the folder: letters, digits and `._+~-`, not starting with a dot (e.g. reef-tentacle-0.2.0-linux-x64).'),
});

const fileResponses: RouteConfig['responses'] = {
  200: {
    description: 'The file.',
    headers: { ...FILE_HEADERS, 'Accept-Ranges': header('`bytes`.'), 'Content-Disposition': header('`attachment; filename="<name>"`.') },
    content: { 'application/octet-stream': BINARY },
  },
  206: {
    description: 'The part a `Range: bytes=a-b` asked for (one range; `If-Range` with the ETag or the date keeps it).',
    headers: { ...FILE_HEADERS, 'Content-Range': header('`bytes a-b/size`.') },
    content: { 'application/octet-stream': BINARY },
  },
  304: { description: '`If-None-Match` matched the ETag (or `If-Modified-Since` is not older than the file).', headers: FILE_HEADERS },
  400: text('The name is not valid percent-encoding.'),
  404: text('No such file is served.'),
  416: { description: 'The range starts at or beyond the end.', headers: { 'Content-Range': header('`bytes */size`.') } },
  503: { ...text('The file kept changing while it was hashed (still being copied in); try again.'), headers: { 'Retry-After': header('Seconds: 5.') } },
};

function both(route: Omit<RouteConfig, 'method'>): RouteConfig[] {
  const headResponses = Object.fromEntries(
    Object.entries(route.responses).map(([status, r]) => [status, { description: (r as ResponseConfig).description, headers: (r as ResponseConfig).headers }]),
  );
  return [
    { ...route, method: 'get', operationId: `get${route.operationId}` },
    { ...route, method: 'head', operationId: `head${route.operationId}`, summary: `${route.summary} (headers only)`, responses: headResponses },
  ];
}

export const DOWNLOADS_OPENAPI: readonly RouteConfig[] = [
  ...both({
    path: DOWNLOADS_PATH,
    operationId: 'Downloads',
    tags: ['Downloads'],
    summary: 'Redirect to the downloads page',
    security: [],
    responses: { 301: { description: 'To /downloads/.', headers: { Location: header('`/downloads/`.') } } },
  }),
  ...both({
    path: `${DOWNLOADS_PATH}/`,
    operationId: 'DownloadsPage',
    tags: ['Downloads'],
    summary: 'The downloads page',
    description: "For people: each file's name, size and SHA-256, and the pinned `curl` command that fetches one.",
    security: [],
    responses: { 200: { description: 'The page.', content: { 'text/html': { schema: { type: 'string' } } } } },
  }),
  ...both({
    path: `${DOWNLOADS_PATH}/${INDEX_JSON}`,
    operationId: 'DownloadsIndex',
    tags: ['Downloads'],
    summary: 'The files, for scripts',
    security: [],
    responses: { 200: { description: 'Every file served, by name; `files` is empty when there are none.', content: { 'application/json': { schema: DownloadsIndex } } } },
  }),
  ...both({
    path: `${DOWNLOADS_PATH}/${SHA256SUMS}`,
    operationId: 'DownloadsSha256Sums',
    tags: ['Downloads'],
    summary: 'The files\' SHA-256, as `sha256sum -c` reads them',
    security: [],
    responses: { 200: text('One `<sha256 hex>  <name>` line per file.') },
  }),
  ...both({
    path: `${DOWNLOADS_PATH}/${INSTALL_SCRIPT}`,
    operationId: 'DownloadsInstallScript',
    tags: ['Downloads'],
    summary: 'The Tentacle installer',
    description: "What the Add machine command line (POST /api/tokens with `install`) runs: it fetches the Tentacle from this server, pinned, installs it, registers it with the join token the line carries and starts its service. It holds no secret.",
    security: [],
    responses: { 200: text('A POSIX shell script (as text/plain, so a browser shows it for reading).') },
  }),
  ...both({
    path: `${DOWNLOADS_PATH}/{name}`,
    operationId: 'DownloadsFile',
    tags: ['Downloads'],
    summary: 'A file',
    description: 'Conditional (`If-None-Match`, `If-Modified-Since`) and range (`Range`, `If-Range`) requests as RFC 9110 says.',
    security: [],
    request: { params: fileName },
    responses: fileResponses,
  }),
];

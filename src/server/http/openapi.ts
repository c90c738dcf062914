import { extendZodWithOpenApi, OpenApiGeneratorV31, OpenAPIRegistry, type ResponseConfig, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z, type ZodTypeAny } from 'zod';
import { API_KEY_HEADER, ApiError, Forbidden } from '../../api/contract.js';
import { VERSION } from '../../version.js';
import { PERMISSIONS, rolesAllowing } from '../auth/roles.js';
import { CSRF_HEADER, SESSION_COOKIE } from '../auth/sessions.js';
import { DEFAULT_LIMITS } from './context.js';
import type { ApiRoute, ResponseSpec, Tag } from './route.js';

/**
 * The OpenAPI 3.1 document of the REST API, generated from the route table: each route's
 * zod schemas (the ones it validates its input with, and those of its answers, from
 * src/api/contract.ts) become its parameters, request body and responses; the errors every
 * route shares are added here from what the handler does (handler.ts, route.ts, auth.ts).
 * Served at GET /api/openapi.json; docs/api.md says how to use it.
 */
export type OpenApiDocument = ReturnType<OpenApiGeneratorV31['generateDocument']>;

/** The `x-` extension on a `text/event-stream` response naming each event's data schema. */
export const EVENTS_EXTENSION = 'x-reef-events';

const TAGS: Record<Tag | 'Downloads', string> = {
  Server: 'The server and its nodes.',
  Machines: 'Deployment targets and workers, each running a Tentacle.',
  Environments: 'Named groups of targets (Production, Staging).',
  'Worker pools': 'Named groups of workers.',
  Files: 'Files uploaded for push-file tasks, kept under their SHA-256.',
  Tasks: 'Scripts, file pushes and health checks on machines, and their logs.',
  Users: 'Portal users: created by admins with a role and scope; every user changes their own password.',
  'API keys': 'Keys for scripts, the CLI and Tentacle registration.',
  'Join tokens': 'Short-lived, scoped tokens that can register a machine and do nothing else.',
  Audit: 'The append-only record of who changed what, when, from which address.',
  Downloads: 'Tentacles and packages for machines to install, anonymous and read-only (outside /api).',
};

/** Each security scheme, as auth.ts reads it. */
const SCHEMES = {
  apiKey: { type: 'apiKey', in: 'header', name: API_KEY_HEADER, description: 'An API key (`API-...`); create one with `reef apikey create`.' },
  bearer: { type: 'http', scheme: 'bearer', description: 'The same API key as `Authorization: Bearer API-...`.' },
  portalSession: {
    type: 'apiKey',
    in: 'cookie',
    name: SESSION_COOKIE,
    description: "The web portal's session cookie (set by signing in at /login). An API key wins when both are sent.",
  },
  csrfToken: {
    type: 'apiKey',
    in: 'header',
    name: CSRF_HEADER,
    description: "With the session cookie, on anything but GET and HEAD: the session's CSRF token (the portal's pages carry it).",
  },
} as const;

const MIB = 1024 * 1024;

/** Raw bytes: any content (OpenAPI 3.1 describes a binary body by its media type; the schema is empty). */
export const BINARY = { schema: {} };

/**
 * The errors routes share, each once in components/responses: what authentication,
 * validation, the body limits and the catch-all answer (auth.ts, route.ts, body.ts, errors.ts).
 */
const SHARED_ERRORS = {
  BadRequest: [
    400,
    'The request is not valid (REEF_INVALID_REQUEST: the message names each field and its problem, `details.problems` lists them; ' +
      'REEF_BAD_JSON, REEF_INVALID_ARGUMENT and others: the message says what).',
  ],
  Unauthenticated: [
    401,
    'No key or session, or a key that is unknown or revoked, or a session that ended (REEF_UNAUTHENTICATED, REEF_BAD_API_KEY, REEF_SESSION_EXPIRED); ' +
      'WWW-Authenticate names the schemes.',
  ],
  Forbidden: [
    403,
    "The caller's role does not allow this route, or it covers the whole server and the caller is limited to environments or worker pools " +
      '(REEF_FORBIDDEN; `details` is a Forbidden: what was attempted, the permission, the roles that have it); ' +
      'or a join token, which only POST /api/machines takes (REEF_JOIN_TOKEN_NOT_ALLOWED).',
  ],
  ForbiddenOrCsrf: [
    403,
    "The caller's role does not allow this route, or it covers the whole server and the caller is limited to environments or worker pools " +
      '(REEF_FORBIDDEN; `details` is a Forbidden); a join token, which only POST /api/machines takes (REEF_JOIN_TOKEN_NOT_ALLOWED); ' +
      'or a session cookie came without its CSRF token (REEF_CSRF_REJECTED).',
  ],
  JsonTooLarge: [413, `The body is over the limit (REEF_TOO_LARGE; ${DEFAULT_LIMITS.maxJsonBytes / MIB} MiB by default).`],
  UploadTooLarge: [413, `The upload is over the limit (REEF_TOO_LARGE; ${DEFAULT_LIMITS.maxUploadBytes / 1024 / MIB} GiB by default).`],
  NotJson: [415, 'The body is not application/json in UTF-8 (REEF_UNSUPPORTED_MEDIA_TYPE).'],
  NotOctetStream: [415, 'The body is not application/octet-stream (REEF_UNSUPPORTED_MEDIA_TYPE).'],
  RateLimited: [
    429,
    'Too many requests by this key or portal user, or without credentials from this client address (REEF_TOO_MANY_REQUESTS); too many failed key ' +
      'attempts from this address (REEF_RATE_LIMITED); or the key check is busy (REEF_BUSY). Retry-After says when to try again.',
  ],
  UrlTooLong: [414, 'The URL (path and query) is over 16 KiB (REEF_URL_TOO_LONG).'],
  HeadersTooLarge: [431, 'The header fields are over 16 KiB, or the whole request head over 64 KiB (REEF_HEADERS_TOO_LARGE).'],
  Internal: [500, 'Something unexpected (REEF_INTERNAL); the cause is in the server log only.'],
} as const satisfies Record<string, readonly [number, string]>;

type SharedError = keyof typeof SHARED_ERRORS;

/** The shared errors a route can answer, beyond those it names itself. */
function sharedErrors(route: ApiRoute): SharedError[] {
  const { spec } = route;
  const errors: SharedError[] = [];
  if (spec.params || spec.query || spec.headers || spec.body) errors.push('BadRequest');
  if (!route.public) errors.push('Unauthenticated', spec.method === 'GET' ? 'Forbidden' : 'ForbiddenOrCsrf');
  errors.push('RateLimited');
  if (spec.body?.json) errors.push('JsonTooLarge', 'NotJson');
  if (spec.body?.binary) errors.push('UploadTooLarge', 'NotOctetStream');
  errors.push('UrlTooLong', 'HeadersTooLarge', 'Internal');
  return errors;
}

/** Which permission the route needs and which roles have it (src/server/auth/roles.ts). */
function permissionNote(route: ApiRoute): string {
  if (!route.permission) return 'Needs no key or session.';
  return `Needs permission \`${route.permission}\` (${PERMISSIONS[route.permission]}): roles ${rolesAllowing(route.permission).join(', ')}.`;
}

/** `/api/machines/:idOrName` as OpenAPI writes it: `/api/machines/{idOrName}`. */
export function openApiPath(pattern: string): string {
  return pattern.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function errorResponse(description: string): ResponseConfig {
  return { description, content: { 'application/json': { schema: ApiError } } };
}

function refIdOf(schema: ZodTypeAny): string | undefined {
  return schema._def.openapi?._internal?.refId;
}

/** `routes`: the API's table; `described`: routes served elsewhere on the port, described as they are (/downloads). */
export function buildOpenApiDocument(routes: readonly ApiRoute[], described: readonly RouteConfig[] = []): OpenApiDocument {
  // The registry names schemas with .openapi(), which this adds to zod (once; only in the server).
  extendZodWithOpenApi(z);
  const registry = new OpenAPIRegistry();
  for (const [name, scheme] of Object.entries(SCHEMES)) registry.registerComponent('securitySchemes', name, scheme);
  registry.register('ApiError', ApiError);
  // The `details` of every 403 REEF_FORBIDDEN.
  registry.register('Forbidden', Forbidden);
  const apiErrorRef = { $ref: '#/components/schemas/ApiError' };
  for (const [name, [status, description]] of Object.entries(SHARED_ERRORS)) {
    registry.registerComponent('responses', name, {
      description,
      ...(status === 429 ? { headers: { 'Retry-After': { description: 'Seconds to wait.', schema: { type: 'integer' } } } } : {}),
      ...(status === 401
        ? { headers: { 'WWW-Authenticate': { description: 'The schemes that would be accepted (RFC 9110): Bearer for API keys, Cookie for portal sessions.', schema: { type: 'string' } } } }
        : {}),
      content: { 'application/json': { schema: apiErrorRef } },
    });
  }

  const response = (spec: ResponseSpec): ResponseConfig => {
    if (spec.json) return { description: spec.description, content: { 'application/json': { schema: spec.json } } };
    if (spec.events) {
      const events: Record<string, { $ref: string }> = {};
      for (const [name, schema] of Object.entries(spec.events)) {
        const refId = refIdOf(schema);
        if (!refId) throw new Error(`the schema of event "${name}" needs a name: named('Name', ...) in src/api/contract.ts`);
        registry.register(refId, schema);
        events[name] = { $ref: `#/components/schemas/${refId}` };
      }
      return {
        description: `${spec.description} Events: ${Object.keys(events).map((e) => `\`${e}\``).join(', ')}; the data of each is the JSON of its schema in \`${EVENTS_EXTENSION}\`.`,
        content: { 'text/event-stream': { schema: { type: 'string' }, [EVENTS_EXTENSION]: events } as never },
      };
    }
    return { description: spec.description };
  };

  for (const route of routes) {
    const { spec } = route;
    const responses: RouteConfig['responses'] = {};
    for (const [status, answer] of Object.entries(spec.responses)) responses[status] = response(answer);
    for (const name of sharedErrors(route)) responses[SHARED_ERRORS[name][0]] = { $ref: `#/components/responses/${name}` };
    for (const [status, when] of Object.entries(spec.errors ?? {})) responses[status] = errorResponse(when);
    const sessionRequirement: Record<string, string[]> = spec.method === 'GET' ? { portalSession: [] } : { portalSession: [], csrfToken: [] };
    const body = spec.body;
    const operation: RouteConfig = {
      method: spec.method.toLowerCase() as RouteConfig['method'],
      path: openApiPath(spec.path),
      operationId: operationId(route),
      tags: [spec.tag],
      summary: spec.summary,
      description: [spec.description, permissionNote(route)].filter(Boolean).join('\n\n'),
      security: route.public ? [] : [{ apiKey: [] }, { bearer: [] }, sessionRequirement],
      request: {
        ...(spec.params ? { params: spec.params } : {}),
        ...(spec.query ? { query: spec.query } : {}),
        ...(spec.headers ? { headers: spec.headers } : {}),
        ...(body
          ? {
              body: body.json
                ? { required: true, ...(body.description ? { description: body.description } : {}), content: { 'application/json': { schema: body.json } } }
                : { required: true, description: body.binary, content: { 'application/octet-stream': BINARY } },
            }
          : {}),
      },
      responses,
    };
    registry.registerPath(operation);
    // Every GET route answers HEAD too (router.ts): its headers, no body.
    if (spec.method === 'GET') {
      registry.registerPath({ ...operation, method: 'head', operationId: `head${operation.operationId!.slice('get'.length)}`, summary: `${spec.summary} (headers only)` });
    }
  }

  for (const route of described) registry.registerPath(route);

  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Reef REST API',
      version: VERSION,
      description:
        'Deploy to machines through their Tentacles. JSON over HTTPS under /api; every error there is an `ApiError`. ' +
        "Generated from the server's route table and the zod schemas it validates with (src/api/contract.ts); docs/api.md describes the routes. " +
        'The anonymous /downloads routes are described too.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
    security: [{ apiKey: [] }, { bearer: [] }, { portalSession: [] }],
  });
}

/** `GET /api/machines/:idOrName/health` -> `getMachinesIdOrNameHealth`: unique per route, stable. */
function operationId(route: ApiRoute): string {
  const words = route.path
    .split(/[/:.-]+/)
    .filter((w) => w !== '' && w !== 'api')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1));
  return route.method.toLowerCase() + (words.join('') || 'Api');
}

import { z } from 'zod';
import { DOWNLOADS_OPENAPI } from '../../downloads/openapi.js';
import { METRICS_OPENAPI } from '../../metrics/openapi.js';
import { buildOpenApiDocument, type OpenApiDocument } from '../openapi.js';
import { sendJson } from '../respond.js';
import { route, type ApiRoute } from '../route.js';
import { apiKeyRoutes } from './apikeys.js';
import { auditRoutes } from './audit.js';
import { fileRoutes } from './files.js';
import { groupRoutes } from './groups.js';
import { infoRoutes } from './info.js';
import { machineRoutes } from './machines.js';
import { serverCertificateRoutes } from './server-certificate.js';
import { taskRoutes } from './tasks.js';
import { joinTokenRoutes } from './tokens.js';
import { userRoutes } from './users.js';

/** Every route of the REST API, in matching order (the first match wins; see router.ts). */
const RESOURCE_ROUTES: readonly ApiRoute[] = [...infoRoutes, ...machineRoutes, ...groupRoutes, ...fileRoutes, ...taskRoutes, ...apiKeyRoutes, ...joinTokenRoutes, ...userRoutes, ...auditRoutes, ...serverCertificateRoutes];

let document: OpenApiDocument | undefined;

/** The document describes the table it is served from, itself included; built on first use. */
const openApiRoute: ApiRoute = route({
  method: 'GET',
  path: '/api/openapi.json',
  tag: 'Server',
  summary: 'This API as an OpenAPI 3.1 document',
  description: 'Needs no key: it describes the routes and their schemas, and holds no data (docs/security.md).',
  permission: 'public',
  responses: {
    200: {
      description: 'The OpenAPI document.',
      json: z.object({ openapi: z.literal('3.1.0'), info: z.object({ title: z.string(), version: z.string() }).catchall(z.unknown()), paths: z.record(z.unknown()) }).catchall(z.unknown()),
    },
  },
  handler: async ({ res }) => sendJson(res, 200, openApiDocument()),
});

export const API_ROUTES: readonly ApiRoute[] = [...RESOURCE_ROUTES, openApiRoute];

/** The OpenAPI document of API_ROUTES, /downloads and /metrics (the same object on every call). */
export function openApiDocument(): OpenApiDocument {
  return (document ??= buildOpenApiDocument(API_ROUTES, [...DOWNLOADS_OPENAPI, ...METRICS_OPENAPI]));
}

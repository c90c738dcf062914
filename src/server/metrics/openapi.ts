import type { RouteConfig } from '@asteasolutions/zod-to-openapi';
import { METRICS_PATH } from './http.js';

/**
 * /metrics as the OpenAPI document describes it: served by the API handler outside its
 * route table (Prometheus' text format, not JSON), so this says what it answers, and
 * test/server/http/openapi.test.ts checks a real server's answers against it.
 */
const metricsOperation = (method: 'get' | 'head'): RouteConfig => ({
  method,
  path: METRICS_PATH,
  operationId: `${method}Metrics`,
  tags: ['Server'],
  summary: method === 'get' ? "This node's Prometheus metrics" : "This node's Prometheus metrics (headers only)",
  description:
    'The Prometheus text exposition format (docs/operations.md, "Metrics"); gzip when asked. Also served without credentials on `--metrics-listen`, when set.',
  security: [{ apiKey: [] }, { bearer: [] }, { portalSession: [] }],
  responses: {
    200: { description: 'The metrics.', content: { 'text/plain': { schema: { type: 'string' } } } },
    401: { $ref: '#/components/responses/Unauthenticated' },
    429: { $ref: '#/components/responses/RateLimited' },
    500: { $ref: '#/components/responses/Internal' },
  },
});

export const METRICS_OPENAPI: readonly RouteConfig[] = [metricsOperation('get'), metricsOperation('head')];

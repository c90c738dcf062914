import { authorizeMetricsRead } from '../auth.js';
import type { RouteHandler } from '../context.js';
import { HttpError } from '../errors.js';
import { sendMetrics } from '../../metrics/http.js';

/**
 * The node's Prometheus metrics (docs/operations.md), for an API key like the rest of the
 * API. Outside the route table on purpose: it answers Prometheus' text format, not JSON,
 * and lives at /metrics, where Prometheus looks; the OpenAPI document describes it apart.
 */
export const serveMetrics: RouteHandler = async ({ req, res, deps, actor }) => {
  authorizeMetricsRead(actor);
  if (!deps.metrics) throw new HttpError('REEF_NO_ROUTE', 'This server keeps no metrics.');
  await sendMetrics(req, res, deps.metrics);
};

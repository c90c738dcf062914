import { authorizeMetricsRead } from '../auth.js';
import type { RouteTable } from '../context.js';
import { HttpError } from '../errors.js';
import { METRICS_PATH, sendMetrics } from '../../metrics/http.js';

/** The node's Prometheus metrics (docs/operations.md), for an API key like the rest of the API. */
export function metricsRoutes(routes: RouteTable): void {
  routes.add('GET', METRICS_PATH, async ({ req, res, deps, key, user }) => {
    authorizeMetricsRead(key, user);
    if (!deps.metrics) throw new HttpError(404, 'REEF_NO_ROUTE', 'This server keeps no metrics.');
    await sendMetrics(req, res, deps.metrics);
  });
}

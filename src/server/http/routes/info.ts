import type { RouteTable } from '../context.js';
import { sendJson } from '../respond.js';

export function infoRoutes(routes: RouteTable): void {
  /** Unauthenticated liveness probe for load balancers and `tentacle register-with`. */
  routes.add('GET', '/api/ping', async ({ res }) => sendJson(res, 200, { ok: true }), { public: true });
  routes.add('GET', '/api', async ({ res, deps }) => sendJson(res, 200, deps.info));
  /** Every node on the store: health, connected tentacles, work it supervises. */
  routes.add('GET', '/api/nodes', async ({ res, deps }) => sendJson(res, 200, { items: await deps.engine.nodes() }));
}

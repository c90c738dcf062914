import { itemsOf, NodeView, Ping, ServerInfo } from '../../../api/contract.js';
import { sendJson } from '../respond.js';
import { route, type ApiRoute } from '../route.js';

export const infoRoutes: ApiRoute[] = [
  route({
    method: 'GET',
    path: '/api/ping',
    tag: 'Server',
    summary: 'Liveness probe',
    description: 'Needs no key: for load balancers and `tentacle register-with`.',
    permission: 'public',
    responses: { 200: { description: 'The server answers.', json: Ping } },
    handler: async ({ res }) => sendJson(res, 200, { ok: true }),
  }),
  route({
    method: 'GET',
    path: '/api',
    tag: 'Server',
    summary: 'This server',
    permission: 'server:read',
    description: 'Its version, node name, and the comms certificate and port Tentacles must trust.',
    responses: { 200: { description: 'The server.', json: ServerInfo } },
    handler: async ({ res, deps }) => sendJson(res, 200, deps.info),
  }),
  route({
    method: 'GET',
    path: '/api/nodes',
    tag: 'Server',
    summary: 'Server nodes',
    permission: 'nodes:read',
    description: 'Every node on the store: health, connected Tentacles, the work it supervises.',
    responses: { 200: { description: 'The nodes, by name.', json: itemsOf(NodeView) } },
    handler: async ({ res, deps }) => sendJson(res, 200, { items: await deps.engine.nodes() }),
  }),
];

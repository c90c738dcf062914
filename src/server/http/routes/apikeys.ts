import { ApiKeyView, CreateApiKeyRequest, CreatedApiKey, IdParams, itemsOf } from '../../../api/contract.js';
import { ReefError } from '../../../errors.js';
import { auditRequest } from '../../audit/request.js';
import { createApiKey, listApiKeys, revokeApiKey } from '../../auth/apikeys.js';
import { checkedAccessOf } from '../../auth/scope.js';
import { sendEmpty, sendJson } from '../respond.js';
import { route, type ApiRoute } from '../route.js';
import { apiKeyView } from '../views.js';

export const apiKeyRoutes: ApiRoute[] = [
  route({
    method: 'GET',
    path: '/api/apikeys',
    tag: 'API keys',
    summary: 'List API keys',
    description: 'Never the keys or their hashes.',
    permission: 'apikeys:manage',
    responses: { 200: { description: 'Every key, revoked ones included, with its role and scope.', json: itemsOf(ApiKeyView) } },
    handler: async ({ res, deps }) => sendJson(res, 200, { items: (await listApiKeys(deps.store)).map(apiKeyView) }),
  }),
  route({
    method: 'POST',
    path: '/api/apikeys',
    tag: 'API keys',
    summary: 'Create an API key',
    description: 'With a role (default admin) and, for operator, viewer and registrar, optionally environments and worker pools to limit it to.',
    permission: 'apikeys:manage',
    body: { json: CreateApiKeyRequest },
    responses: { 201: { description: 'The new key: the only time it is shown.', json: CreatedApiKey } },
    errors: { 404: 'An environment or worker pool of the scope does not exist.' },
    handler: async (ctx, { body }) => {
      const { res, deps, logger, key, user } = ctx;
      const created = await createApiKey(deps.store, body.name, await checkedAccessOf(deps.store, body));
      logger.info({ apiKey: created.id, name: created.name, role: created.role, scope: created.scope, by: key?.id ?? user?.username }, 'api: API key created');
      await auditRequest(ctx, { kind: 'apikey.created', target: { id: created.id, name: created.name }, details: { prefix: created.key.slice(4, 12), role: created.role, scope: created.scope } });
      sendJson(res, 201, { id: created.id, name: created.name, role: created.role, scope: created.scope, key: created.key } satisfies CreatedApiKey);
    },
  }),
  route({
    method: 'DELETE',
    path: '/api/apikeys/:id',
    tag: 'API keys',
    summary: 'Revoke an API key',
    description: 'It stops working at once on this node, and within a minute on the others (they re-read a key they remember once a minute).',
    permission: 'apikeys:manage',
    params: IdParams,
    responses: { 204: { description: 'Revoked.' } },
    errors: { 404: 'No active key has that id (it may be revoked already).' },
    handler: async (ctx, { params }) => {
      const { res, deps, logger, key, user } = ctx;
      const revoked = (await listApiKeys(deps.store)).find((k) => k.id === params.id);
      if (!(await revokeApiKey(deps.store, params.id))) {
        throw new ReefError('REEF_NOT_FOUND', `No active API key has id "${params.id}" (it may be revoked already).`);
      }
      logger.info({ apiKey: params.id, by: key?.id ?? user?.username }, 'api: API key revoked');
      await auditRequest(ctx, { kind: 'apikey.revoked', target: { id: params.id, name: revoked?.name ?? null } });
      sendEmpty(res, 204);
    },
  }),
];

import { ApiKeyView, CreatedApiKey, IdParams, itemsOf, NameRequest } from '../../../api/contract.js';
import { ReefError } from '../../../errors.js';
import { auditRequest } from '../../audit/request.js';
import { createApiKey, listApiKeys, revokeApiKey } from '../../auth/apikeys.js';
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
    responses: { 200: { description: 'Every key, revoked ones included.', json: itemsOf(ApiKeyView) } },
    handler: async ({ res, deps }) => sendJson(res, 200, { items: (await listApiKeys(deps.store)).map(apiKeyView) }),
  }),
  route({
    method: 'POST',
    path: '/api/apikeys',
    tag: 'API keys',
    summary: 'Create an API key',
    body: { json: NameRequest },
    responses: { 201: { description: 'The new key: the only time it is shown.', json: CreatedApiKey } },
    handler: async (ctx, { body }) => {
      const { res, deps, logger, key } = ctx;
      const created = await createApiKey(deps.store, body.name);
      logger.info({ apiKey: created.id, name: created.name, by: key?.id }, 'api: API key created');
      await auditRequest(ctx, { kind: 'apikey.created', target: { id: created.id, name: created.name }, details: { prefix: created.key.slice(4, 12) } });
      sendJson(res, 201, { id: created.id, name: created.name, key: created.key } satisfies CreatedApiKey);
    },
  }),
  route({
    method: 'DELETE',
    path: '/api/apikeys/:id',
    tag: 'API keys',
    summary: 'Revoke an API key',
    description: 'It stops working at once.',
    params: IdParams,
    responses: { 204: { description: 'Revoked.' } },
    errors: { 404: 'No active key has that id (it may be revoked already).' },
    handler: async (ctx, { params }) => {
      const { res, deps, logger, key } = ctx;
      const revoked = (await listApiKeys(deps.store)).find((k) => k.id === params.id);
      if (!(await revokeApiKey(deps.store, params.id))) {
        throw new ReefError('REEF_NOT_FOUND', `No active API key has id "${params.id}" (it may be revoked already).`);
      }
      logger.info({ apiKey: params.id, by: key?.id }, 'api: API key revoked');
      await auditRequest(ctx, { kind: 'apikey.revoked', target: { id: params.id, name: revoked?.name ?? null } });
      sendEmpty(res, 204);
    },
  }),
];

import { NameRequest, type CreatedApiKey } from '../../../api/contract.js';
import { ReefError } from '../../../errors.js';
import { createApiKey, listApiKeys, revokeApiKey } from '../../auth/apikeys.js';
import { readJson } from '../body.js';
import type { RouteTable } from '../context.js';
import { sendEmpty, sendJson } from '../respond.js';
import { parseWith } from '../validation.js';

export function apiKeyRoutes(routes: RouteTable): void {
  routes.add('GET', '/api/apikeys', async ({ res, deps }) => sendJson(res, 200, { items: await listApiKeys(deps.store) }));
  routes.add('POST', '/api/apikeys', async ({ req, res, deps, logger, key }) => {
    const { name } = parseWith(NameRequest, await readJson(req, deps.limits.maxJsonBytes));
    const created = await createApiKey(deps.store, name);
    logger.info({ apiKey: created.id, name: created.name, by: key?.id }, 'api: API key created');
    sendJson(res, 201, { id: created.id, name: created.name, key: created.key } satisfies CreatedApiKey);
  });
  routes.add('DELETE', '/api/apikeys/:id', async ({ res, deps, params, logger, key }) => {
    if (!(await revokeApiKey(deps.store, params.id!))) {
      throw new ReefError('REEF_NOT_FOUND', `No active API key has id "${params.id}" (it may be revoked already).`);
    }
    logger.info({ apiKey: params.id, by: key?.id }, 'api: API key revoked');
    sendEmpty(res, 204);
  });
}

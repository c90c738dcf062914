import { CreatedJoinToken, CreateJoinTokenRequest, IdParams, itemsOf, JoinTokenView } from '../../../api/contract.js';
import { ReefError } from '../../../errors.js';
import { auditRequest } from '../../audit/request.js';
import { checkScope, createJoinToken, joinTokenState, revokeJoinToken } from '../../auth/join-tokens.js';
import { requestBaseUrl } from '../../downloads/commands.js';
import { installCommand } from '../../install/tentacle-install.js';
import type { JoinToken } from '../../store/types.js';
import type { ApiContext } from '../context.js';
import { sendEmpty, sendJson } from '../respond.js';
import { route, type ApiRoute } from '../route.js';

export function joinTokenView(token: JoinToken, now = new Date()): JoinTokenView {
  const { scope, ...rest } = token;
  return { ...rest, ...scope, state: joinTokenState(token, now) };
}

/** Who is making a request, as `reef tokens list` shows it (also the certificate rotation's `startedBy`). */
export function maker(ctx: ApiContext): string {
  if (ctx.key) return `API key "${ctx.key.name}" (${ctx.key.id})`;
  if (ctx.user) return `user "${ctx.user.username}"`;
  return 'unknown';
}

export const joinTokenRoutes: ApiRoute[] = [
  route({
    method: 'GET',
    path: '/api/tokens',
    tag: 'Join tokens',
    permission: 'tokens:manage',
    summary: 'List join tokens',
    description: 'Never the tokens or their hashes. Revoked, used-up and expired tokens are listed too, newest first.',
    responses: { 200: { description: 'Every join token.', json: itemsOf(JoinTokenView) } },
    handler: async ({ res, deps }) => {
      const now = new Date();
      sendJson(res, 200, { items: (await deps.store.listJoinTokens()).map((t) => joinTokenView(t, now)) });
    },
  }),
  route({
    method: 'POST',
    path: '/api/tokens',
    tag: 'Join tokens',
    permission: 'tokens:manage',
    summary: 'Create a join token',
    description:
      'A token registers machines into its scope (targets in `environments` with `roles`, or workers in `workerPools`) and can do nothing else. ' +
      'With `install`, the answer also carries the one line that installs a Tentacle from this server and registers it with the token.',
    body: { json: CreateJoinTokenRequest },
    responses: { 201: { description: 'The new token: the only time it is shown.', json: CreatedJoinToken } },
    handler: async (ctx, { body }) => {
      const scope = checkScope(body);
      // The install options are checked before the token exists, so a bad one leaves none behind.
      let commandFor: ((token: string) => string) | undefined;
      if (body.install) {
        const install = ctx.deps.install;
        if (!install) throw new ReefError('REEF_INVALID_ARGUMENT', 'This server cannot make install commands (it serves no downloads).');
        commandFor = installCommand({
          ...body.install,
          serverUrl: body.install.serverUrl ?? requestBaseUrl(ctx.req),
          publicKeyPin: install.publicKeyPin(),
          portalThumbprint: install.portalThumbprint(),
          websocketPath: install.websocketPath,
          kind: scope.kind,
        });
      }
      const { token, joinToken } = await createJoinToken(ctx.deps.store, {
        ...(body.environments ? { environments: body.environments } : {}),
        ...(body.roles ? { roles: body.roles } : {}),
        ...(body.workerPools ? { workerPools: body.workerPools } : {}),
        ...(body.uses !== undefined ? { uses: body.uses } : {}),
        ...(body.expiresInSeconds !== undefined ? { lifetimeSeconds: body.expiresInSeconds } : {}),
        createdBy: maker(ctx),
      });
      const command = commandFor?.(token);
      ctx.logger.info({ joinToken: joinToken.id, scope: joinToken.scope, uses: joinToken.uses, expiresAt: joinToken.expiresAt, by: maker(ctx) }, 'api: join token created');
      await auditRequest(ctx, {
        kind: 'token.created',
        target: { id: joinToken.id, name: null },
        details: { scope: { ...joinToken.scope }, uses: joinToken.uses, expiresAt: joinToken.expiresAt, installCommand: command !== undefined },
      });
      const created: CreatedJoinToken = { ...joinTokenView(joinToken), token, ...(command !== undefined ? { installCommand: command } : {}) };
      sendJson(ctx.res, 201, created);
    },
  }),
  route({
    method: 'DELETE',
    path: '/api/tokens/:id',
    tag: 'Join tokens',
    permission: 'tokens:manage',
    summary: 'Revoke a join token',
    description: 'It stops working at once, on every server node.',
    params: IdParams,
    responses: { 204: { description: 'Revoked.' } },
    errors: { 404: 'No token has that id, or it is revoked already.' },
    handler: async (ctx, { params }) => {
      if (!(await revokeJoinToken(ctx.deps.store, params.id))) {
        throw new ReefError('REEF_NOT_FOUND', `No join token has id "${params.id}", or it is revoked already; list them with \`reef tokens list\`.`);
      }
      ctx.logger.info({ joinToken: params.id, by: maker(ctx) }, 'api: join token revoked');
      await auditRequest(ctx, { kind: 'token.revoked', target: { id: params.id, name: null } });
      sendEmpty(ctx.res, 204);
    },
  }),
];

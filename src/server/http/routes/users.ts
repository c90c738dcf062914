import { auditRequest } from '../../audit/request.js';
import { ChangePasswordRequest, CreateUserRequest, IdOrNameParams, itemsOf, ResetPasswordRequest, UserAccessRequest, UserView, UserWithPassword } from '../../../api/contract.js';
import { ReefError } from '../../../errors.js';
import { generatePassword } from '../../auth/passwords.js';
import { checkedAccessOf } from '../../auth/scope.js';
import { changeOwnPassword, checkedNewPassword, createUser, resetPassword } from '../../auth/users.js';
import type { User } from '../../store/types.js';
import type { ApiContext } from '../context.js';
import { sendEmpty, sendJson } from '../respond.js';
import { route, type ApiRoute } from '../route.js';
import { userView } from '../views.js';

/**
 * Portal users, managed by admins (create with a role and scope, reset a password,
 * disable, enable), and every user's own password. A password is shown once, when it is
 * set; only its scrypt hash is stored. Resetting or disabling ends the user's sessions.
 */

const NO_USER = 'No user has that id or username.';

async function find(ctx: ApiContext, idOrName: string): Promise<User> {
  const user = await ctx.deps.store.getUser(idOrName);
  if (!user) throw new ReefError('REEF_NOT_FOUND', `No user has the id or username "${idOrName}". List users with \`reef user list\`.`);
  return user;
}

/**
 * The user to change, who must not be the admin asking: another admin must do it, so an
 * admin who can sign in always remains (`doing`: "disable yourself").
 */
async function findOther(ctx: ApiContext, idOrName: string, doing: string): Promise<User> {
  const user = await find(ctx, idOrName);
  if (ctx.user?.id === user.id) throw new ReefError('REEF_INVALID_ARGUMENT', `You cannot ${doing}: another admin must do it, so an admin who can sign in always remains.`);
  return user;
}

/** The user as stored now, after a change. */
async function current(ctx: ApiContext, user: User): Promise<UserView> {
  return userView((await ctx.deps.store.getUser(user.id)) ?? user);
}

function by(ctx: ApiContext): string | undefined {
  return ctx.user?.username ?? ctx.key?.id;
}

export const userRoutes: ApiRoute[] = [
  route({
    method: 'GET',
    path: '/api/users',
    tag: 'Users',
    summary: 'List portal users',
    permission: 'users:manage',
    responses: { 200: { description: 'Every user, by username, disabled ones included.', json: itemsOf(UserView) } },
    handler: async ({ res, deps }) => sendJson(res, 200, { items: (await deps.store.listUsers()).map(userView) }),
  }),
  route({
    method: 'POST',
    path: '/api/users',
    tag: 'Users',
    summary: 'Create a portal user',
    description: 'With a role and, for operator, viewer and registrar, optionally environments and worker pools. Without `password`, one is generated.',
    permission: 'users:manage',
    body: { json: CreateUserRequest },
    responses: { 201: { description: 'The user and its password: the only time the password is shown.', json: UserWithPassword } },
    errors: { 404: 'An environment or worker pool of the scope does not exist.', 409: 'The username (any case) is taken (REEF_CONFLICT).' },
    handler: async (ctx, { body }) => {
      const access = await checkedAccessOf(ctx.deps.store, body);
      const password = body.password === undefined ? generatePassword() : checkedNewPassword(body.password);
      const user = await createUser(ctx.deps.store, body.username, password, access);
      ctx.logger.info({ user: user.username, role: user.role, scope: user.scope, by: by(ctx) }, 'api: user created');
      await auditRequest(ctx, { kind: 'user.created', target: { id: user.id, name: user.username }, details: { role: user.role, scope: user.scope } });
      sendJson(ctx.res, 201, { user: userView(user), password } satisfies UserWithPassword);
    },
  }),
  route({
    method: 'GET',
    path: '/api/users/:idOrName',
    tag: 'Users',
    summary: 'Get a portal user',
    permission: 'users:manage',
    params: IdOrNameParams,
    responses: { 200: { description: 'The user.', json: UserView } },
    errors: { 404: NO_USER },
    handler: async (ctx, { params }) => sendJson(ctx.res, 200, userView(await find(ctx, params.idOrName))),
  }),
  route({
    method: 'POST',
    path: '/api/users/:idOrName/password',
    tag: 'Users',
    summary: "Reset a user's password",
    description: 'Sets the password given, or a generated one, and ends every session of the user.',
    permission: 'users:manage',
    params: IdOrNameParams,
    body: { json: ResetPasswordRequest },
    responses: { 200: { description: 'The user and the new password: the only time it is shown.', json: UserWithPassword } },
    errors: { 404: NO_USER },
    handler: async (ctx, { params, body }) => {
      const { user, password } = await resetPassword(ctx.deps.store, (await find(ctx, params.idOrName)).id, body.password);
      ctx.logger.info({ user: user.username, by: by(ctx) }, 'api: user password reset');
      await auditRequest(ctx, { kind: 'user.password-reset', target: { id: user.id, name: user.username } });
      sendJson(ctx.res, 200, { user: userView(user), password } satisfies UserWithPassword);
    },
  }),
  route({
    method: 'POST',
    path: '/api/users/:idOrName/access',
    tag: 'Users',
    summary: "Change a user's role and scope",
    description: 'Takes effect at once, on every node: sessions read the role and scope from the user. You cannot change your own.',
    permission: 'users:manage',
    params: IdOrNameParams,
    body: { json: UserAccessRequest },
    responses: { 200: { description: 'The user as it is now.', json: UserView } },
    errors: { 400: 'The user asking is the one to change, or an admin with a scope (REEF_INVALID_ARGUMENT).', 404: `${NO_USER} Or a scope group does not exist.` },
    handler: async (ctx, { params, body }) => {
      const user = await findOther(ctx, params.idOrName, 'change your own role');
      const access = await checkedAccessOf(ctx.deps.store, body);
      await ctx.deps.store.setUserAccess(user.id, access);
      ctx.logger.info({ user: user.username, role: access.role, scope: access.scope, by: by(ctx) }, 'api: user role changed');
      await auditRequest(ctx, {
        kind: 'user.role-changed',
        target: { id: user.id, name: user.username },
        details: { before: { role: user.role, scope: user.scope }, after: { role: access.role, scope: access.scope } },
      });
      sendJson(ctx.res, 200, await current(ctx, user));
    },
  }),
  ...(['disable', 'enable'] as const).map((action) =>
    route({
      method: 'POST',
      path: `/api/users/:idOrName/${action}`,
      tag: 'Users',
      summary: action === 'disable' ? 'Disable a user' : 'Enable a user',
      description:
        action === 'disable'
          ? 'The user cannot sign in, and every session of theirs ends at once on every node. You cannot disable yourself. Doing it twice is harmless.'
          : 'The user can sign in again with their password. Doing it twice is harmless.',
      permission: 'users:manage',
      params: IdOrNameParams,
      responses: { 200: { description: 'The user as it is now.', json: UserView } },
      errors: action === 'disable' ? { 400: 'The user asking is the one to disable (REEF_INVALID_ARGUMENT).', 404: NO_USER } : { 404: NO_USER },
      handler: async (ctx, { params }) => {
        const user = action === 'disable' ? await findOther(ctx, params.idOrName, 'disable yourself') : await find(ctx, params.idOrName);
        if (await ctx.deps.store.setUserDisabled(user.id, action === 'disable')) {
          ctx.logger.info({ user: user.username, by: by(ctx) }, `api: user ${action}d`);
          await auditRequest(ctx, { kind: action === 'disable' ? 'user.disabled' : 'user.enabled', target: { id: user.id, name: user.username } });
        }
        sendJson(ctx.res, 200, await current(ctx, user));
      },
    }),
  ),
  route({
    method: 'POST',
    path: '/api/account/password',
    tag: 'Users',
    summary: 'Change your own password',
    description: 'For a signed-in portal user (an API key has no password). Your other sessions end; this one stays.',
    permission: 'account:self',
    body: { json: ChangePasswordRequest },
    responses: { 204: { description: 'Changed.' } },
    errors: { 400: 'The request came with an API key, not a portal session (REEF_INVALID_ARGUMENT).', 403: 'The current password is not right (REEF_WRONG_PASSWORD).' },
    handler: async (ctx, { body }) => {
      if (!ctx.user) throw new ReefError('REEF_INVALID_ARGUMENT', 'An API key has no password to change: sign in to the portal as the user whose password it is.');
      await changeOwnPassword(ctx.deps.store, ctx.user.username, body.currentPassword, body.newPassword, ctx.user.sessionIdHash);
      ctx.logger.info({ user: ctx.user.username }, 'api: user changed their password');
      await auditRequest(ctx, { kind: 'user.password-changed', target: { id: ctx.user.id, name: ctx.user.username } });
      sendEmpty(ctx.res, 204);
    },
  }),
];

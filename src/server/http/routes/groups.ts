import { GroupView, IdOrNameParams, itemsOf, NameRequest } from '../../../api/contract.js';
import { ReefError } from '../../../errors.js';
import type { AuditKind } from '../../audit/kinds.js';
import { auditRequest } from '../../audit/request.js';
import { environmentInScope, workerPoolInScope } from '../../auth/scope.js';
import type { Environment, Scope, Store, WorkerPool } from '../../store/types.js';
import { sendEmpty, sendJson } from '../respond.js';
import { route, type ApiRoute, type Tag } from '../route.js';
import { groupView } from '../views.js';

/** Environments and worker pools: named groups with the same four routes. */
interface Group {
  path: string;
  /** Whether a scope lets its holder see the group of this name. */
  inScope(scope: Scope, name: string): boolean;
  tag: Tag;
  what: string;
  audited: { created: AuditKind; deleted: AuditKind };
  list(store: Store): Promise<Array<Environment | WorkerPool>>;
  get(store: Store, idOrName: string): Promise<Environment | WorkerPool | null>;
  ensure(store: Store, name: string): Promise<Environment | WorkerPool>;
  remove(store: Store, idOrName: string): Promise<boolean>;
}

const GROUPS: Group[] = [
  {
    path: '/api/environments',
    inScope: environmentInScope,
    tag: 'Environments',
    what: 'environment',
    audited: { created: 'environment.created', deleted: 'environment.deleted' },
    list: (s) => s.listEnvironments(),
    get: (s, n) => s.getEnvironment(n),
    ensure: (s, n) => s.ensureEnvironment(n),
    remove: (s, n) => s.deleteEnvironment(n),
  },
  {
    path: '/api/worker-pools',
    inScope: workerPoolInScope,
    tag: 'Worker pools',
    what: 'worker pool',
    audited: { created: 'worker-pool.created', deleted: 'worker-pool.deleted' },
    list: (s) => s.listWorkerPools(),
    get: (s, n) => s.getWorkerPool(n),
    ensure: (s, n) => s.ensureWorkerPool(n),
    remove: (s, n) => s.deleteWorkerPool(n),
  },
];

export const groupRoutes: ApiRoute[] = GROUPS.flatMap((group) => {
  const notFound = (idOrName: string) => new ReefError('REEF_NOT_FOUND', `No ${group.what} has the id or name "${idOrName}".`);
  return [
    route({
      method: 'GET',
      path: group.path,
      tag: group.tag,
      summary: `List ${group.what}s`,
      description: `A caller limited to ${group.what}s sees only those.`,
      permission: 'groups:read',
      responses: { 200: { description: `Every ${group.what} the caller may see, by name.`, json: itemsOf(GroupView) } },
      handler: async ({ res, deps, actor }) =>
        sendJson(res, 200, { items: (await group.list(deps.store)).filter((g) => group.inScope(actor!.scope, g.name)).map(groupView) }),
    }),
    route({
      method: 'GET',
      path: `${group.path}/:idOrName`,
      tag: group.tag,
      summary: `Get a ${group.what}`,
      permission: 'groups:read',
      params: IdOrNameParams,
      responses: { 200: { description: `The ${group.what}.`, json: GroupView } },
      errors: { 404: `No ${group.what} has that id or name, or it is outside the caller's scope.` },
      handler: async ({ res, deps, actor }, { params }) => {
        const found = await group.get(deps.store, params.idOrName);
        if (!found || !group.inScope(actor!.scope, found.name)) throw notFound(params.idOrName);
        sendJson(res, 200, groupView(found));
      },
    }),
    route({
      method: 'POST',
      path: group.path,
      tag: group.tag,
      summary: `Create a ${group.what}`,
      permission: 'groups:write',
      description: 'Creating one that exists (the name in any case) answers 200 with it, so scripts can run twice.',
      body: { json: NameRequest },
      responses: {
        201: { description: 'Created.', json: GroupView },
        200: { description: 'It existed already.', json: GroupView },
      },
      handler: async (ctx, { body }) => {
        const { res, deps } = ctx;
        const existing = await group.get(deps.store, body.name);
        if (existing && existing.name.toLowerCase() === body.name.toLowerCase()) return sendJson(res, 200, groupView(existing));
        const created = await group.ensure(deps.store, body.name);
        await auditRequest(ctx, { kind: group.audited.created, target: { id: created.id, name: created.name } });
        sendJson(res, 201, groupView(created));
      },
    }),
    route({
      method: 'DELETE',
      path: `${group.path}/:idOrName`,
      tag: group.tag,
      summary: `Delete a ${group.what}`,
      permission: 'groups:write',
      params: IdOrNameParams,
      responses: { 204: { description: 'Deleted.' } },
      errors: { 404: `No ${group.what} has that id or name.`, 409: 'Machines still belong to it (REEF_IN_USE; the message names them).' },
      handler: async (ctx, { params }) => {
        const { res, deps } = ctx;
        const found = await group.get(deps.store, params.idOrName);
        if (!found || !(await group.remove(deps.store, found.id))) throw notFound(params.idOrName);
        await auditRequest(ctx, { kind: group.audited.deleted, target: { id: found.id, name: found.name } });
        sendEmpty(res, 204);
      },
    }),
  ];
});

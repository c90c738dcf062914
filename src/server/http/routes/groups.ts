import { NameRequest } from '../../../api/contract.js';
import { ReefError } from '../../../errors.js';
import type { Environment, Store, WorkerPool } from '../../store/types.js';
import { readJson } from '../body.js';
import type { RouteTable } from '../context.js';
import { sendEmpty, sendJson } from '../respond.js';
import { parseWith } from '../validation.js';

/** Environments and worker pools: named groups with the same four routes. */
interface Group {
  path: string;
  what: string;
  list(store: Store): Promise<Array<Environment | WorkerPool>>;
  get(store: Store, idOrName: string): Promise<Environment | WorkerPool | null>;
  ensure(store: Store, name: string): Promise<Environment | WorkerPool>;
  remove(store: Store, idOrName: string): Promise<boolean>;
}

const GROUPS: Group[] = [
  {
    path: '/api/environments',
    what: 'environment',
    list: (s) => s.listEnvironments(),
    get: (s, n) => s.getEnvironment(n),
    ensure: (s, n) => s.ensureEnvironment(n),
    remove: (s, n) => s.deleteEnvironment(n),
  },
  {
    path: '/api/worker-pools',
    what: 'worker pool',
    list: (s) => s.listWorkerPools(),
    get: (s, n) => s.getWorkerPool(n),
    ensure: (s, n) => s.ensureWorkerPool(n),
    remove: (s, n) => s.deleteWorkerPool(n),
  },
];

export function groupRoutes(routes: RouteTable): void {
  for (const group of GROUPS) {
    routes.add('GET', group.path, async ({ res, deps }) => sendJson(res, 200, { items: await group.list(deps.store) }));
    routes.add('GET', `${group.path}/:idOrName`, async ({ res, deps, params }) => {
      const found = await group.get(deps.store, params.idOrName!);
      if (!found) throw new ReefError('REEF_NOT_FOUND', `No ${group.what} has the id or name "${params.idOrName}".`);
      sendJson(res, 200, found);
    });
    // Creating one that exists answers 200 with it, so scripts can run twice.
    routes.add('POST', group.path, async ({ req, res, deps }) => {
      const { name } = parseWith(NameRequest, await readJson(req, deps.limits.maxJsonBytes));
      const existing = await group.get(deps.store, name);
      if (existing && existing.name.toLowerCase() === name.toLowerCase()) return sendJson(res, 200, existing);
      sendJson(res, 201, await group.ensure(deps.store, name));
    });
    routes.add('DELETE', `${group.path}/:idOrName`, async ({ res, deps, params }) => {
      if (!(await group.remove(deps.store, params.idOrName!))) {
        throw new ReefError('REEF_NOT_FOUND', `No ${group.what} has the id or name "${params.idOrName}".`);
      }
      sendEmpty(res, 204);
    });
  }
}

import { RegisterMachineRequest, type RegisterMachineResponse } from '../../../api/contract.js';
import { ReefError } from '../../../errors.js';
import { normalizeThumbprint } from '../../../pki/thumbprint.js';
import type { Machine, MachineFilter, MachineInput } from '../../store/types.js';
import { readJson } from '../body.js';
import type { ApiContext, RouteTable } from '../context.js';
import { HttpError } from '../errors.js';
import { sendEmpty, sendJson } from '../respond.js';
import { parseWith, queryEnum, queryInt, queryString } from '../validation.js';
import { machineView } from '../views.js';

export function machineRoutes(routes: RouteTable): void {
  routes.add('POST', '/api/machines', register);
  routes.add('GET', '/api/machines', list);
  routes.add('GET', '/api/machines/:idOrName', async (ctx) => sendJson(ctx.res, 200, machineView(await find(ctx), ctx.deps.comms, await ctx.deps.engine.links())));
  routes.add('GET', '/api/machines/:idOrName/health', health);
  routes.add('DELETE', '/api/machines/:idOrName', async (ctx) => remove(ctx, await find(ctx)));
  routes.add('DELETE', '/api/machines/by-thumbprint/:thumbprint', async (ctx) => {
    const thumbprint = normalizeThumbprint(ctx.params.thumbprint!);
    const machine = await ctx.deps.store.getMachineByThumbprint(thumbprint);
    if (!machine) throw new ReefError('REEF_NOT_FOUND', `No machine is registered with thumbprint ${thumbprint}.`);
    await remove(ctx, machine);
  });
}

async function find(ctx: ApiContext): Promise<Machine> {
  const idOrName = ctx.params.idOrName!;
  const machine = await ctx.deps.store.getMachine(idOrName);
  if (!machine) throw new ReefError('REEF_NOT_FOUND', `No machine has the id or name "${idOrName}". List machines with \`reef machines list\`.`);
  return machine;
}

async function register(ctx: ApiContext): Promise<void> {
  const { store, comms, info } = ctx.deps;
  const body = parseWith(RegisterMachineRequest, await readJson(ctx.req, ctx.deps.limits.maxJsonBytes));
  const thumbprint = normalizeThumbprint(body.thumbprint);
  const input: MachineInput = {
    name: body.name,
    kind: body.kind,
    thumbprint,
    commsStyle: body.commsStyle,
    endpoint: body.endpoint ?? null,
    environments: body.environments,
    roles: body.roles,
    workerPools: body.workerPools,
    tentacleVersion: body.tentacleVersion ?? null,
  };
  let machine: Machine;
  let created: boolean;
  if (body.force) {
    const previous = (await store.getMachineByThumbprint(thumbprint)) ?? (await store.getMachine(body.name));
    ({ machine, created } = await store.upsertMachine(input));
    if (previous && previous.id === machine.id && previous.thumbprint !== machine.thumbprint) {
      // The old certificate is no longer trusted: its live connections must not linger.
      comms.disconnect(previous.thumbprint, `machine ${machine.name} was registered again with another certificate`);
    }
  } else {
    machine = await store.createMachine(input);
    created = true;
  }
  ctx.logger.info({ machine: machine.id, name: machine.name, thumbprint: machine.thumbprint, created, apiKey: ctx.key?.id }, 'api: machine registered');
  const response: RegisterMachineResponse = { machine: machineView(machine, comms, await ctx.deps.engine.links()), created, server: info };
  sendJson(ctx.res, created ? 201 : 200, response);
}

async function list(ctx: ApiContext): Promise<void> {
  const { store, comms } = ctx.deps;
  const filter: MachineFilter = {};
  const kind = queryEnum(ctx.query, 'kind', ['target', 'worker'] as const);
  if (kind) filter.kind = kind;
  const environment = queryString(ctx.query, 'environment');
  if (environment !== undefined) {
    if (!(await store.getEnvironment(environment))) throw new ReefError('REEF_NOT_FOUND', `No environment is named "${environment}".`);
    filter.environment = environment;
  }
  const workerPool = queryString(ctx.query, 'workerPool');
  if (workerPool !== undefined) {
    if (!(await store.getWorkerPool(workerPool))) throw new ReefError('REEF_NOT_FOUND', `No worker pool is named "${workerPool}".`);
    filter.workerPool = workerPool;
  }
  const role = queryString(ctx.query, 'role');
  if (role !== undefined) filter.role = role;
  const machines = await store.listMachines(filter);
  const links = await ctx.deps.engine.links();
  sendJson(ctx.res, 200, { items: machines.map((m) => machineView(m, comms, links)) });
}

async function health(ctx: ApiContext): Promise<void> {
  const machine = await find(ctx);
  const limit = queryInt(ctx.query, 'limit', 1, 1000);
  sendJson(ctx.res, 200, { items: await ctx.deps.store.listHealth(machine.id, limit) });
}

async function remove(ctx: ApiContext, machine: Machine): Promise<void> {
  if (!(await ctx.deps.store.deleteMachine(machine.id))) {
    throw new HttpError('REEF_NOT_FOUND', `Machine "${machine.name}" was deleted meanwhile.`);
  }
  // Refusing reconnects is the trust check's job (it reads the store); live links go now.
  const closed = ctx.deps.comms.disconnect(machine.thumbprint, `machine ${machine.name} was deleted`);
  ctx.logger.info({ machine: machine.id, name: machine.name, closedConnections: closed, apiKey: ctx.key?.id }, 'api: machine deleted');
  sendEmpty(ctx.res, 204);
}

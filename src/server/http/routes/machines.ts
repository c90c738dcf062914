import {
  HealthCheckView,
  IdOrNameParams,
  HealthQuery,
  itemsOf,
  MachineListQuery,
  MachineView,
  RegisterMachineRequest,
  RegisterMachineResponse,
  ThumbprintParams,
} from '../../../api/contract.js';
import { ReefError } from '../../../errors.js';
import { membershipsWithin, useJoinToken } from '../../auth/join-tokens.js';
import { normalizeThumbprint } from '../../../pki/thumbprint.js';
import { auditRequest } from '../../audit/request.js';
import type { JoinToken, Machine, MachineFilter, MachineInput } from '../../store/types.js';
import type { ApiContext } from '../context.js';
import { HttpError } from '../errors.js';
import { sendEmpty, sendJson } from '../respond.js';
import { route, type ApiRoute } from '../route.js';
import { healthView, machineView } from '../views.js';

const NO_MACHINE = 'No machine has that id or name.';

export const machineRoutes: ApiRoute[] = [
  route({
    method: 'POST',
    path: '/api/machines',
    tag: 'Machines',
    summary: 'Register a machine',
    description:
      'Missing environments and pools are created. With `force`, a machine with the same name or thumbprint is updated in place (200) ' +
      'and live connections of a replaced certificate are closed. ' +
      'Takes a join token in place of an API key (the only route that does): the machine then registers only into the token\'s scope, ' +
      'getting the token\'s environments and roles (or pools) when it names none, and one use of the token is taken. ' +
      'An expired, used-up or revoked token is refused with 401 and a code that says which.',
    body: { json: RegisterMachineRequest },
    responses: {
      201: { description: 'Registered.', json: RegisterMachineResponse },
      200: { description: 'Registered again with `force`: the existing machine, updated.', json: RegisterMachineResponse },
    },
    joinToken: true,
    errors: {
      409: 'The name or thumbprint is registered already (REEF_CONFLICT); send `force` to replace it.',
      403:
        'With a join token: the kind, an environment, role or worker pool is outside the token\'s scope, or `force` was sent (REEF_JOIN_TOKEN_OUT_OF_SCOPE); ' +
        'with a session cookie: no CSRF token (REEF_CSRF_REJECTED).',
    },
    handler: async (ctx, { body }) => register(ctx, body),
  }),
  route({
    method: 'GET',
    path: '/api/machines',
    tag: 'Machines',
    summary: 'List machines',
    description: 'Sorted by name; filters are case-insensitive.',
    query: MachineListQuery,
    responses: { 200: { description: 'The machines.', json: itemsOf(MachineView) } },
    errors: { 404: 'The environment or worker pool filtered on does not exist.' },
    handler: async (ctx, { query }) => list(ctx, query),
  }),
  route({
    method: 'GET',
    path: '/api/machines/:idOrName',
    tag: 'Machines',
    summary: 'Get a machine',
    params: IdOrNameParams,
    responses: { 200: { description: 'The machine.', json: MachineView } },
    errors: { 404: NO_MACHINE },
    handler: async (ctx, { params }) => sendJson(ctx.res, 200, machineView(await find(ctx, params.idOrName), ctx.deps.comms, await ctx.deps.engine.links())),
  }),
  route({
    method: 'GET',
    path: '/api/machines/:idOrName/health',
    tag: 'Machines',
    summary: "A machine's health checks",
    params: IdOrNameParams,
    query: HealthQuery,
    responses: { 200: { description: 'Its health checks, newest first.', json: itemsOf(HealthCheckView) } },
    errors: { 404: NO_MACHINE },
    handler: async (ctx, { params, query }) => {
      const machine = await find(ctx, params.idOrName);
      sendJson(ctx.res, 200, { items: (await ctx.deps.store.listHealth(machine.id, query.limit)).map(healthView) });
    },
  }),
  route({
    method: 'DELETE',
    path: '/api/machines/:idOrName',
    tag: 'Machines',
    summary: 'Delete a machine',
    description: 'Its live connections are closed at once; reconnects are refused because it is no longer in the store.',
    params: IdOrNameParams,
    responses: { 204: { description: 'Deleted.' } },
    errors: { 404: NO_MACHINE },
    handler: async (ctx, { params }) => remove(ctx, await find(ctx, params.idOrName)),
  }),
  route({
    method: 'DELETE',
    path: '/api/machines/by-thumbprint/:thumbprint',
    tag: 'Machines',
    summary: 'Delete a machine by its certificate thumbprint',
    description: 'Used by `tentacle deregister-from`.',
    params: ThumbprintParams,
    responses: { 204: { description: 'Deleted.' } },
    errors: { 404: 'No machine has that thumbprint.' },
    handler: async (ctx, { params }) => {
      const thumbprint = normalizeThumbprint(params.thumbprint);
      const machine = await ctx.deps.store.getMachineByThumbprint(thumbprint);
      if (!machine) throw new ReefError('REEF_NOT_FOUND', `No machine is registered with thumbprint ${thumbprint}.`);
      await remove(ctx, machine);
    },
  }),
];

async function find(ctx: ApiContext, idOrName: string): Promise<Machine> {
  const machine = await ctx.deps.store.getMachine(idOrName);
  if (!machine) throw new ReefError('REEF_NOT_FOUND', `No machine has the id or name "${idOrName}". List machines with \`reef machines list\`.`);
  return machine;
}

async function register(ctx: ApiContext, request: RegisterMachineRequest): Promise<void> {
  const { store, comms, info } = ctx.deps;
  const token = ctx.joinToken;
  // A token decides the memberships (refusing what is outside its scope) before any use is taken.
  const body = token ? { ...request, ...membershipsWithin(token, request) } : request;
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
  let replacedThumbprint: string | undefined;
  let usedToken: JoinToken | undefined;
  if (body.force) {
    const previous = (await store.getMachineByThumbprint(thumbprint)) ?? (await store.getMachine(body.name));
    ({ machine, created } = await store.upsertMachine(input));
    if (previous && previous.id === machine.id && previous.thumbprint !== machine.thumbprint) {
      // The old certificate is no longer trusted: its live connections must not linger.
      comms.disconnect(previous.thumbprint, `machine ${machine.name} was registered again with another certificate`);
      replacedThumbprint = previous.thumbprint;
    }
  } else if (token) {
    const used = await useJoinToken(store, token);
    usedToken = used;
    try {
      machine = await store.createMachine(input);
    } catch (err) {
      // Refused (a name or thumbprint taken): the token keeps the use, so the machine can try again.
      await store.returnJoinTokenUse(used.id);
      throw err;
    }
    created = true;
  } else {
    machine = await store.createMachine(input);
    created = true;
  }
  ctx.logger.info({ machine: machine.id, name: machine.name, thumbprint: machine.thumbprint, created, apiKey: ctx.key?.id, joinToken: token?.id }, 'api: machine registered');
  const target = { id: machine.id, name: machine.name };
  if (usedToken) await auditRequest(ctx, { kind: 'token.used', target, details: { usesLeft: usedToken.usesLeft } });
  await auditRequest(ctx, { kind: 'machine.registered', target, details: registrationDetails(machine, created) });
  if (replacedThumbprint) await auditRequest(ctx, { kind: 'machine.trust-changed', target, details: { from: replacedThumbprint, to: machine.thumbprint } });
  const response: RegisterMachineResponse = { machine: machineView(machine, comms, await ctx.deps.engine.links()), created, server: info };
  sendJson(ctx.res, created ? 201 : 200, response);
}

async function list(ctx: ApiContext, query: MachineListQuery): Promise<void> {
  const { store, comms } = ctx.deps;
  const filter: MachineFilter = {};
  if (query.kind) filter.kind = query.kind;
  if (query.environment !== undefined) {
    if (!(await store.getEnvironment(query.environment))) throw new ReefError('REEF_NOT_FOUND', `No environment is named "${query.environment}".`);
    filter.environment = query.environment;
  }
  if (query.workerPool !== undefined) {
    if (!(await store.getWorkerPool(query.workerPool))) throw new ReefError('REEF_NOT_FOUND', `No worker pool is named "${query.workerPool}".`);
    filter.workerPool = query.workerPool;
  }
  if (query.role !== undefined) filter.role = query.role;
  const machines = await store.listMachines(filter);
  const links = await ctx.deps.engine.links();
  sendJson(ctx.res, 200, { items: machines.map((m) => machineView(m, comms, links)) });
}

async function remove(ctx: ApiContext, machine: Machine): Promise<void> {
  if (!(await ctx.deps.store.deleteMachine(machine.id))) {
    throw new HttpError('REEF_NOT_FOUND', `Machine "${machine.name}" was deleted meanwhile.`);
  }
  // Refusing reconnects is the trust check's job (it reads the store); live links go now.
  const closed = ctx.deps.comms.disconnect(machine.thumbprint, `machine ${machine.name} was deleted`);
  ctx.logger.info({ machine: machine.id, name: machine.name, closedConnections: closed, apiKey: ctx.key?.id }, 'api: machine deleted');
  await auditRequest(ctx, { kind: 'machine.deregistered', target: { id: machine.id, name: machine.name }, details: { thumbprint: machine.thumbprint, closedConnections: closed } });
  sendEmpty(ctx.res, 204);
}

/** What a registration decided, for the audit log: which certificate is now trusted, and where. */
function registrationDetails(machine: Machine, created: boolean) {
  const placement = machine.kind === 'worker' ? { workerPools: machine.workerPools } : { environments: machine.environments, roles: machine.roles };
  return { kind: machine.kind, thumbprint: machine.thumbprint, commsStyle: machine.commsStyle, ...placement, created };
}

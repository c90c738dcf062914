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
import type { Actor } from '../../auth/roles.js';
import { checkRegistrationInScope, checkReplaceInScope, environmentInScope, machineInScope, workerPoolInScope } from '../../auth/scope.js';
import type { JoinToken, Machine, MachineFilter, MachineInput } from '../../store/types.js';
import type { Logger } from '../../../logging.js';
import { requestActor, type Actor as AuditActor } from '../../audit/actor.js';
import { clientAddress } from '../../https/client-address.js';
import type { ApiContext } from '../context.js';
import { HttpError } from '../errors.js';
import { sendEmpty, sendJson } from '../respond.js';
import { route, type ApiRoute } from '../route.js';
import { healthView, machineView } from '../views.js';

const NO_MACHINE = "No machine has that id or name, or it is outside the caller's scope.";

export const machineRoutes: ApiRoute[] = [
  route({
    method: 'POST',
    path: '/api/machines',
    tag: 'Machines',
    summary: 'Register a machine',
    description:
      'Missing environments and pools are created. With `force`, a machine with the same name or thumbprint is updated in place (200) ' +
      'and live connections of a replaced certificate are closed. A caller limited to environments or pools registers only into them, ' +
      'and replaces only machines inside them. ' +
      'Takes a join token in place of an API key (the only route that does): the machine then registers only into the token\'s scope, ' +
      'getting the token\'s environments and roles (or pools) when it names none, and one use of the token is taken. ' +
      'An expired, used-up or revoked token is refused with 401 and a code that says which.',
    permission: 'machines:register',
    body: { json: RegisterMachineRequest },
    responses: {
      201: { description: 'Registered.', json: RegisterMachineResponse },
      200: { description: 'Registered again with `force`: the existing machine, updated.', json: RegisterMachineResponse },
    },
    joinToken: true,
    errors: {
      409: 'The name or thumbprint is registered already (REEF_CONFLICT); send `force` to replace it.',
      403:
        "The machine's environments or pools, or the machine `force` would replace, are outside the caller's scope (REEF_OUT_OF_SCOPE); " +
        'with a join token: the kind, an environment, role or worker pool is outside the token\'s scope, or `force` was sent (REEF_JOIN_TOKEN_OUT_OF_SCOPE); ' +
        'with a session cookie: no CSRF token (REEF_CSRF_REJECTED).',
    },
    handler: async (ctx, { body }) => register(ctx, body),
  }),
  route({
    method: 'GET',
    path: '/api/machines',
    tag: 'Machines',
    summary: 'List machines',
    description: "Sorted by name; filters are case-insensitive. Machines outside the caller's scope are left out.",
    permission: 'machines:read',
    query: MachineListQuery,
    responses: { 200: { description: 'The machines.', json: itemsOf(MachineView) } },
    errors: { 404: "The environment or worker pool filtered on does not exist or is outside the caller's scope." },
    handler: async (ctx, { query }) => list(ctx, query),
  }),
  route({
    method: 'GET',
    path: '/api/machines/:idOrName',
    tag: 'Machines',
    summary: 'Get a machine',
    permission: 'machines:read',
    params: IdOrNameParams,
    responses: { 200: { description: 'The machine.', json: MachineView } },
    errors: { 404: NO_MACHINE },
    handler: async (ctx, { params }) => sendJson(ctx.res, 200, machineView(await find(ctx, params.idOrName), ctx.deps.comms, await ctx.deps.engine.links(), (await ctx.deps.engine.releases?.()) ?? [])),
  }),
  route({
    method: 'GET',
    path: '/api/machines/:idOrName/health',
    tag: 'Machines',
    summary: "A machine's health checks",
    permission: 'machines:read',
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
    permission: 'machines:deregister',
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
    permission: 'machines:deregister',
    description: 'Used by `tentacle deregister-from`.',
    params: ThumbprintParams,
    responses: { 204: { description: 'Deleted.' } },
    errors: { 404: 'No machine has that thumbprint.' },
    handler: async (ctx, { params }) => {
      const thumbprint = normalizeThumbprint(params.thumbprint);
      const machine = await ctx.deps.store.getMachineByThumbprint(thumbprint);
      if (!machine || !machineInScope(ctx.actor!.scope, machine)) throw new ReefError('REEF_NOT_FOUND', `No machine is registered with thumbprint ${thumbprint}.`);
      await remove(ctx, machine);
    },
  }),
];

async function find(ctx: ApiContext, idOrName: string): Promise<Machine> {
  const machine = await ctx.deps.store.getMachine(idOrName);
  // Outside the scope answers as missing: a scoped caller learns nothing of it.
  if (!machine || !machineInScope(ctx.actor!.scope, machine)) throw new ReefError('REEF_NOT_FOUND', `No machine has the id or name "${idOrName}". List machines with \`reef machines list\`.`);
  return machine;
}

async function register(ctx: ApiContext, request: RegisterMachineRequest): Promise<void> {
  const who = { auditActor: requestActor(ctx)!, address: clientAddress(ctx.req) };
  const registrar: Registrar = ctx.joinToken ? { joinToken: ctx.joinToken, ...who } : { actor: ctx.actor!, apiKeyId: ctx.key?.id, ...who };
  const response = await registerMachine(ctx.deps, request, ctx.logger, registrar);
  sendJson(ctx.res, response.created ? 201 : 200, response);
}

/**
 * Who registers: a key or portal user (an actor, whose scope bounds what may be registered),
 * or a join token (whose own scope does).
 */
export type Registrar = ({ actor: Actor; apiKeyId?: string; joinToken?: undefined } | { joinToken: JoinToken; actor?: undefined; apiKeyId?: undefined }) & {
  /** Who the audit log names, and from which address (PROXY-protocol aware on REST, the carrier's over comms). */
  auditActor: AuditActor;
  address: string;
};

/**
 * Registers a machine: what POST /api/machines does once the caller is authenticated, and
 * what a registration over comms does (src/server/http/comms-registration.ts).
 */
export async function registerMachine(
  deps: Pick<ApiContext['deps'], 'store' | 'comms' | 'info' | 'engine' | 'audit'>,
  request: RegisterMachineRequest,
  logger: Logger,
  registrar: Registrar,
  how: 'api' | 'comms' = 'api',
): Promise<RegisterMachineResponse & { created: boolean }> {
  const { store, comms, info } = deps;
  const token = registrar.joinToken;
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
  const { actor } = registrar;
  if (actor) checkRegistrationInScope(actor, { name: input.name, kind: input.kind, environments: input.environments ?? [], workerPools: input.workerPools ?? [] });
  let machine: Machine;
  let created: boolean;
  let replacedThumbprint: string | undefined;
  let usedToken: JoinToken | undefined;
  if (body.force) {
    const previous = (await store.getMachineByThumbprint(thumbprint)) ?? (await store.getMachine(body.name));
    if (previous && actor) checkReplaceInScope(actor, previous);
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
  logger.info({ machine: machine.id, name: machine.name, thumbprint: machine.thumbprint, created, apiKey: registrar.apiKeyId, joinToken: token?.id, over: how }, 'api: machine registered');
  const record = (kind: 'token.used' | 'machine.registered' | 'machine.trust-changed', details: Record<string, unknown>) =>
    deps.audit.record({ actor: registrar.auditActor, address: registrar.address, kind, target: { id: machine.id, name: machine.name }, details: { ...details, over: how } });
  if (usedToken) await record('token.used', { usesLeft: usedToken.usesLeft });
  await record('machine.registered', registrationDetails(machine, created));
  if (replacedThumbprint) await record('machine.trust-changed', { from: replacedThumbprint, to: machine.thumbprint });
  return { machine: machineView(machine, comms, await deps.engine.links()), created, server: info };
}

async function list(ctx: ApiContext, query: MachineListQuery): Promise<void> {
  const { store, comms } = ctx.deps;
  const filter: MachineFilter = {};
  if (query.kind) filter.kind = query.kind;
  const { scope } = ctx.actor!;
  if (query.environment !== undefined) {
    if (!(await store.getEnvironment(query.environment)) || !environmentInScope(scope, query.environment)) throw new ReefError('REEF_NOT_FOUND', `No environment is named "${query.environment}".`);
    filter.environment = query.environment;
  }
  if (query.workerPool !== undefined) {
    if (!(await store.getWorkerPool(query.workerPool)) || !workerPoolInScope(scope, query.workerPool)) throw new ReefError('REEF_NOT_FOUND', `No worker pool is named "${query.workerPool}".`);
    filter.workerPool = query.workerPool;
  }
  if (query.role !== undefined) filter.role = query.role;
  const machines = (await store.listMachines(filter)).filter((m) => machineInScope(scope, m));
  const links = await ctx.deps.engine.links();
  const releases = (await ctx.deps.engine.releases?.()) ?? [];
  const views = machines.map((m) => machineView(m, comms, links, releases));
  sendJson(ctx.res, 200, { items: query.outdated === 'true' ? views.filter((v) => v.upgradeAvailable !== null) : views });
}

async function remove(ctx: ApiContext, machine: Machine): Promise<void> {
  if (!(await ctx.deps.store.deleteMachine(machine.id))) {
    throw new HttpError('REEF_NOT_FOUND', `Machine "${machine.name}" was deleted meanwhile.`);
  }
  // Refusing reconnects is the trust check's job (it reads the store); live links go now.
  // A certificate rotation under way: links made with the pending certificate go too.
  const closed = [machine.thumbprint, ...(machine.nextThumbprint ? [machine.nextThumbprint] : [])]
    .map((thumbprint) => ctx.deps.comms.disconnect(thumbprint, `machine ${machine.name} was deleted`))
    .reduce((a, b) => a + b, 0);
  ctx.logger.info({ machine: machine.id, name: machine.name, closedConnections: closed, apiKey: ctx.key?.id }, 'api: machine deleted');
  await auditRequest(ctx, { kind: 'machine.deregistered', target: { id: machine.id, name: machine.name }, details: { thumbprint: machine.thumbprint, closedConnections: closed } });
  sendEmpty(ctx.res, 204);
}

/** What a registration decided, for the audit log: which certificate is now trusted, and where. */
function registrationDetails(machine: Machine, created: boolean) {
  const placement = machine.kind === 'worker' ? { workerPools: machine.workerPools } : { environments: machine.environments, roles: machine.roles };
  return { kind: machine.kind, thumbprint: machine.thumbprint, commsStyle: machine.commsStyle, ...placement, created };
}

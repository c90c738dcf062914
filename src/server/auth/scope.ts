import type { TaskTarget } from '../../api/contract.js';
import { describeScope, isScoped, type Scope } from '../../api/roles.js';
import { ReefError } from '../../errors.js';
import { HttpError } from '../http/errors.js';
import type { Access, Machine, Store, TaskWithMachines } from '../store/types.js';
import { describeActor, type Actor } from './roles.js';

/**
 * Scopes: an operator, viewer or registrar limited to environments and/or worker pools
 * neither sees nor touches machines, tasks and logs outside them.
 *
 * A machine is inside a scope only when every group it belongs to is: every environment
 * of a deployment target, every pool of a worker. A target shared by Test and Production
 * is a Production machine too, and a Test-only operator must not run scripts on it.
 *
 * A task is inside when every machine it runs (or ran) on is inside now; a task whose
 * machine was deleted since is outside (nothing says where that machine was).
 *
 * What is outside is answered as if it did not exist (404 REEF_NOT_FOUND, lists leave it
 * out), so a scoped caller learns nothing of it; only a task target or a registration
 * that reaches outside is refused with 403 REEF_OUT_OF_SCOPE, naming what was outside.
 */

const lower = (names: readonly string[]) => new Set(names.map((n) => n.toLowerCase()));

function within(names: readonly string[], allowed: readonly string[]): boolean {
  const set = lower(allowed);
  return names.length > 0 && names.every((n) => set.has(n.toLowerCase()));
}

export function machineInScope(scope: Scope, machine: Pick<Machine, 'kind' | 'environments' | 'workerPools'>): boolean {
  if (!isScoped(scope)) return true;
  return machine.kind === 'target' ? within(machine.environments, scope.environments) : within(machine.workerPools, scope.workerPools);
}

export function environmentInScope(scope: Scope, name: string): boolean {
  return !isScoped(scope) || lower(scope.environments).has(name.toLowerCase());
}

export function workerPoolInScope(scope: Scope, name: string): boolean {
  return !isScoped(scope) || lower(scope.workerPools).has(name.toLowerCase());
}

/** The ids of the machines a scope covers; undefined for the whole server (no filter). */
export async function machineIdsInScope(store: Store, scope: Scope): Promise<string[] | undefined> {
  if (!isScoped(scope)) return undefined;
  return (await store.listMachines()).filter((m) => machineInScope(scope, m)).map((m) => m.id);
}

export async function taskInScope(store: Store, scope: Scope, task: TaskWithMachines): Promise<boolean> {
  if (!isScoped(scope)) return true;
  const ids = new Set(await machineIdsInScope(store, scope));
  return task.machines.every((m) => ids.has(m.machineId));
}

function outOfScope(actor: Actor, what: string): HttpError {
  return new HttpError('REEF_OUT_OF_SCOPE', `${describeActor(actor)} may act only within ${describeScope(actor.scope)}: ${what}. Nothing was done.`, {
    details: { scope: actor.scope },
  });
}

const quoted = (names: readonly string[]) => names.map((n) => `"${n}"`).join(', ');

/**
 * Refuses a task target that reaches outside the actor's scope, whole, before anything
 * is stored. Every machine the target can reach must be inside: all of an environment's
 * (and role's) targets, all of a pool's workers (one is picked later), every machine
 * named. Machines named but unknown are reported with those outside, so a scoped caller
 * cannot tell "does not exist" from "not yours".
 */
export async function checkTargetInScope(store: Store, actor: Actor, target: TaskTarget): Promise<void> {
  const { scope } = actor;
  if (!isScoped(scope)) return;
  if ('environment' in target) {
    if (!environmentInScope(scope, target.environment)) throw outOfScope(actor, `environment "${target.environment}" is outside`);
    const outside = (await store.listMachines({ kind: 'target', environment: target.environment, role: target.role })).filter((m) => !machineInScope(scope, m));
    if (outside.length) {
      throw outOfScope(actor, `deployment targets ${quoted(outside.map((m) => m.name))} of environment "${target.environment}" also belong to environments outside`);
    }
    return;
  }
  if ('workerPool' in target) {
    if (!workerPoolInScope(scope, target.workerPool)) throw outOfScope(actor, `worker pool "${target.workerPool}" is outside`);
    const outside = (await store.listMachines({ kind: 'worker', workerPool: target.workerPool })).filter((m) => !machineInScope(scope, m));
    if (outside.length) throw outOfScope(actor, `workers ${quoted(outside.map((m) => m.name))} of pool "${target.workerPool}" also belong to pools outside`);
    return;
  }
  const inside = lower((await store.listMachines({ names: target.machines })).filter((m) => machineInScope(scope, m)).map((m) => m.name));
  const outside = target.machines.filter((n) => !inside.has(n.toLowerCase()));
  if (outside.length) throw outOfScope(actor, `machines ${quoted(outside)} are outside it or do not exist`);
}

/** The engine's last check, on the very machines it resolved (a machine may have moved since checkTargetInScope). */
export function machinesGuard(actor: Actor): (machines: Machine[]) => void {
  return (machines) => {
    const outside = machines.filter((m) => !machineInScope(actor.scope, m));
    if (outside.length) throw outOfScope(actor, `machines ${quoted(outside.map((m) => m.name))} are outside it`);
  };
}

/** Refuses registering a machine into groups outside the actor's scope. */
export function checkRegistrationInScope(actor: Actor, machine: Pick<Machine, 'name' | 'kind' | 'environments' | 'workerPools'>): void {
  if (machineInScope(actor.scope, machine)) return;
  const groups = machine.kind === 'target' ? `environments ${quoted(machine.environments)}` : `worker pools ${quoted(machine.workerPools)}`;
  throw outOfScope(actor, `machine "${machine.name}" would be registered into ${groups}`);
}

/** Refuses `force` replacing a machine outside the actor's scope. */
export function checkReplaceInScope(actor: Actor, previous: Pick<Machine, 'name' | 'kind' | 'environments' | 'workerPools'>): void {
  if (machineInScope(actor.scope, previous)) return;
  throw outOfScope(actor, `a machine with that name or thumbprint is registered outside it, and force would replace it`);
}

/** checkedAccess of a request body's `role`, `environments` and `workerPools` (a new key or user). */
export function checkedAccessOf(store: Store, body: { role: Access['role']; environments?: string[]; workerPools?: string[] }): Promise<Access> {
  return checkedAccess(store, { role: body.role, scope: { environments: body.environments ?? [], workerPools: body.workerPools ?? [] } });
}

/**
 * A new key's or user's role and scope, checked: an admin covers the whole server, and
 * each environment and pool named must exist (a typo would otherwise make a key that sees
 * nothing). Names come back as the store spells them.
 */
export async function checkedAccess(store: Store, access: Access): Promise<Access> {
  const { role, scope } = access;
  if (role === 'admin' && isScoped(scope)) {
    throw new ReefError('REEF_INVALID_ARGUMENT', 'An admin cannot be limited to environments or worker pools: admins manage the whole server. Choose operator, viewer or registrar.');
  }
  const environments: string[] = [];
  for (const name of new Set(scope.environments)) {
    const found = await store.getEnvironment(name);
    if (!found) throw new ReefError('REEF_NOT_FOUND', `No environment is named "${name}"; create it first (POST /api/environments) or check the spelling.`);
    if (!environments.includes(found.name)) environments.push(found.name);
  }
  const workerPools: string[] = [];
  for (const name of new Set(scope.workerPools)) {
    const found = await store.getWorkerPool(name);
    if (!found) throw new ReefError('REEF_NOT_FOUND', `No worker pool is named "${name}"; create it first (POST /api/worker-pools) or check the spelling.`);
    if (!workerPools.includes(found.name)) workerPools.push(found.name);
  }
  return { role, scope: { environments, workerPools } };
}

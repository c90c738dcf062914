import { ReefError } from '../../errors.js';
import { normalizeThumbprint } from '../../pki/thumbprint.js';
import { FINAL_STATES } from './types.js';
import type { Endpoint, FinalState, LogStream, Machine, MachineInput, TaskKind, TimeInput, Timestamp } from './types.js';

/**
 * Input checks shared by every Store implementation, so SQLite and PostgreSQL refuse the
 * same things with the same words.
 */

export function invalid(message: string): ReefError {
  return new ReefError('REEF_INVALID_ARGUMENT', message);
}

export function toTimestamp(at: TimeInput | undefined): Timestamp {
  if (at === undefined) return new Date().toISOString();
  const date = typeof at === 'string' ? new Date(at) : at;
  if (Number.isNaN(date.getTime())) throw invalid(`"${String(at)}" is not a valid time; expected an ISO-8601 timestamp.`);
  return date.toISOString();
}

export function clampLimit(limit: number | undefined, fallback: number, max: number): number {
  if (limit === undefined) return fallback;
  if (!Number.isInteger(limit) || limit < 1) throw invalid(`limit must be a positive integer, got ${limit}.`);
  return Math.min(limit, max);
}

const MAX_NAME = 200;

/** Trimmed, non-empty, printable, at most 200 characters. */
export function checkName(what: string, name: unknown): string {
  if (typeof name !== 'string') throw invalid(`${what} must be a string.`);
  const trimmed = name.trim();
  if (trimmed === '') throw invalid(`${what} must not be empty.`);
  if (trimmed.length > MAX_NAME) throw invalid(`${what} "${trimmed.slice(0, 40)}..." is longer than ${MAX_NAME} characters.`);
  if (/\p{Cc}/u.test(trimmed)) throw invalid(`${what} "${trimmed}" contains control characters.`);
  return trimmed;
}

/** Checked names with case-insensitive repeats removed, first spelling kept. */
function checkNames(what: string, names: string[] | undefined): string[] {
  const seen = new Map<string, string>();
  for (const raw of names ?? []) {
    const name = checkName(what, raw);
    if (!seen.has(name.toLowerCase())) seen.set(name.toLowerCase(), name);
  }
  return [...seen.values()];
}

/** A MachineInput checked and normalized: the fields of a Machine that registration sets. */
export type CheckedMachine = Pick<
  Machine,
  'name' | 'kind' | 'thumbprint' | 'commsStyle' | 'endpoint' | 'environments' | 'roles' | 'workerPools' | 'tentacleVersion' | 'platform'
>;

export function checkMachineInput(input: MachineInput): CheckedMachine {
  const name = checkName('Machine name', input.name);
  if (input.kind !== 'target' && input.kind !== 'worker') {
    throw invalid(`Machine kind must be "target" or "worker", got "${String(input.kind)}".`);
  }
  if (input.commsStyle !== 'polling' && input.commsStyle !== 'listening') {
    throw invalid(`Comms style must be "polling" or "listening", got "${String(input.commsStyle)}".`);
  }
  const thumbprint = normalizeThumbprint(input.thumbprint);
  let endpoint: Endpoint | null = null;
  if (input.commsStyle === 'listening') {
    const ep = input.endpoint;
    if (!ep || typeof ep.host !== 'string' || ep.host.trim() === '') {
      throw invalid(`Listening machine "${name}" needs an endpoint host the server can dial (--publicHostName).`);
    }
    if (!Number.isInteger(ep.port) || ep.port < 1 || ep.port > 65535) {
      throw invalid(`Listening machine "${name}" has port ${String(ep.port)}; expected 1-65535.`);
    }
    endpoint = { host: ep.host.trim(), port: ep.port };
  } else if (input.endpoint) {
    throw invalid(`Polling machine "${name}" must not have an endpoint: the tentacle dials the server.`);
  }
  const environments = checkNames('Environment name', input.environments);
  const roles = checkNames('Role', input.roles);
  const workerPools = checkNames('Worker pool name', input.workerPools);
  if (input.kind === 'target') {
    if (environments.length === 0) throw invalid(`Deployment target "${name}" needs at least one environment.`);
    if (roles.length === 0) throw invalid(`Deployment target "${name}" needs at least one role.`);
    if (workerPools.length > 0) throw invalid(`Deployment target "${name}" cannot join worker pools; register it as a worker.`);
  } else {
    if (workerPools.length === 0) throw invalid(`Worker "${name}" needs at least one worker pool.`);
    if (environments.length > 0 || roles.length > 0) {
      throw invalid(`Worker "${name}" cannot have environments or roles; register it as a deployment target.`);
    }
  }
  return {
    name,
    kind: input.kind,
    thumbprint,
    commsStyle: input.commsStyle,
    endpoint,
    environments,
    roles,
    workerPools,
    tentacleVersion: input.tentacleVersion ?? null,
    platform: input.platform ?? null,
  };
}

const TASK_KINDS: readonly TaskKind[] = ['run-script', 'push-file', 'health-check', 'rotate-machine-certificate', 'upgrade-tentacle'];
const STREAMS: readonly LogStream[] = ['stdout', 'stderr', 'info', 'error'];

export function checkTaskKind(kind: unknown): TaskKind {
  if (!TASK_KINDS.includes(kind as TaskKind)) {
    throw invalid(`Task kind must be one of ${TASK_KINDS.join(', ')}; got "${String(kind)}".`);
  }
  return kind as TaskKind;
}

export function checkFinalState(state: unknown): FinalState {
  if (!FINAL_STATES.includes(state as FinalState)) {
    throw invalid(`A finished state must be one of ${FINAL_STATES.join(', ')}; got "${String(state)}".`);
  }
  return state as FinalState;
}

export function checkStream(stream: unknown): LogStream {
  if (!STREAMS.includes(stream as LogStream)) {
    throw invalid(`Log stream must be one of ${STREAMS.join(', ')}; got "${String(stream)}".`);
  }
  return stream as LogStream;
}

/**
 * The server's calls to Tentacles, typed and checked by the contract (src/api/tentacle/).
 * A Tentacle is trusted to be who its certificate says, not to answer well: every answer
 * is checked against the method's result schema and against the call before anyone uses
 * it. An answer that fails fails its call with REEF_PROTOCOL_ERROR naming the Tentacle and
 * the field, and is counted; nothing in it can throw anywhere else.
 */
import { checkAnswer, type ArgsOf, type PlainMethod, type ResultOf } from '../api/tentacle/index.js';
import type { CallOptions, CommsServer, RpcClient, TentacleAddress } from '../comms/index.js';
import { ReefError } from '../errors.js';
import type { Machine } from './store/types.js';

/** One Tentacle to call: through the comms server's routing, or on a given connection. */
export interface TentacleEndpoint {
  /** Names the Tentacle in messages: its machine name and thumbprint. */
  readonly description: string;
  call(method: string, args: unknown, options: CallOptions): Promise<unknown>;
}

/**
 * Where the machine's Tentacle is reached: dialled at its endpoint when listening, awaited
 * when polling. Mid certificate rotation a listening Tentacle may present either certificate.
 */
export function machineAddress(machine: Pick<Machine, 'thumbprint' | 'nextThumbprint' | 'name' | 'commsStyle' | 'endpoint'>): TentacleAddress {
  return {
    thumbprint: machine.thumbprint,
    name: machine.name,
    listening: machine.commsStyle === 'listening' ? (machine.endpoint ?? undefined) : undefined,
    alternates: machine.nextThumbprint ? [machine.nextThumbprint] : undefined,
  };
}

/** A Tentacle by address: each call goes to one of its live connections (dialled or awaited as comms does). */
export function routedEndpoint(comms: CommsServer, target: TentacleAddress): TentacleEndpoint {
  return {
    description: describeTentacle(target.thumbprint, target.name),
    call: (method, args, options) => comms.call(target, method, args, options),
  };
}

/** A Tentacle on one connection (for questions about that connection). */
export function connectionEndpoint(client: RpcClient): TentacleEndpoint {
  return {
    description: describeTentacle(client.peer.thumbprint),
    call: (method, args, options) => client.call(method, args, options),
  };
}

let invalidAnswers = 0;

/** Answers refused by the contract since this process started (for metrics). */
export const protocolErrors = {
  get count(): number {
    return invalidAnswers;
  },
};

/** Calls `method` and answers with its checked result, or fails with the comms error or REEF_PROTOCOL_ERROR. */
export async function callTentacle<M extends PlainMethod>(endpoint: TentacleEndpoint, method: M, args: ArgsOf<M>, options: CallOptions = {}): Promise<ResultOf<M>> {
  const answer = await endpoint.call(method, args, options);
  const checked = checkAnswer(method, args, answer);
  if (checked.ok) return checked.result;
  invalidAnswers++;
  throw new ReefError(
    'REEF_PROTOCOL_ERROR',
    `${endpoint.description} answered ${method} with an invalid result: ${checked.problems}. ` +
      'The answer was not used. Check that the Tentacle runs a Reef version this server supports; a Tentacle that keeps answering like this may be compromised.',
  );
}

function describeTentacle(thumbprint: string, name?: string): string {
  return name ? `Tentacle "${name}" (${thumbprint})` : `Tentacle ${thumbprint}`;
}

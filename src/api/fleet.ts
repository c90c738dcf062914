/** Fleet operations (a Tentacle certificate rotation): shared by the contract and the CLI without loading zod. */

/** How many machines a fleet operation works on at once (on each server node) when not told. */
export const DEFAULT_FLEET_MAX_PARALLEL = 10;

/**
 * The Tentacle RPC contract, shared by the server (the caller) and the Tentacle (the
 * callee). It imports nothing from either.
 */
export * from './limits.js';
export * from './log-line.js';
export * from './vocabulary.js';
export { TICKET_PATTERN, TICKET_RULE, UPGRADE_STATES } from './schemas.js';
export { TENTACLE_METHODS, type ArgsOf, type ParsedArgsOf, type PlainMethod, type ResultOf, type TentacleMethod } from './methods.js';
export { checkAnswer, parseArgs } from './validate.js';
export type * from './types.js';

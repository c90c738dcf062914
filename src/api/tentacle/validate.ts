/**
 * Checking both directions of a call against the contract: the Tentacle checks the
 * arguments it receives (parseArgs), the server checks the answers (checkAnswer).
 */
import type { z } from 'zod';
import { ReefError } from '../../errors.js';
import { TENTACLE_METHODS, type ParsedArgsOf, type Problem, type ResultOf, type TentacleMethod } from './methods.js';

/** Messages name this many problems at most: an answer with 200,000 bad lines gets a short error. */
const MAX_PROBLEMS_NAMED = 5;

/** The arguments of `method`, or REEF_INVALID_ARGUMENT naming every bad field. */
export function parseArgs<M extends TentacleMethod>(method: M, args: unknown): ParsedArgsOf<M> {
  const schema: z.ZodTypeAny = TENTACLE_METHODS[method].args;
  const parsed = schema.safeParse(args);
  if (parsed.success) return parsed.data as ParsedArgsOf<M>;
  const problems = parsed.error.issues.map((issue) => {
    // zod's "Required" for a missing object means no argument object was sent at all.
    if (issue.path.length === 0 && issue.code === 'invalid_type') return `arguments must be an object (got ${describeType(args)})`;
    return `${issue.path.length ? issue.path.join('.') : 'arguments'} ${issue.message}`;
  });
  throw new ReefError('REEF_INVALID_ARGUMENT', `Invalid arguments for ${method}: ${problems.join('; ')}.`);
}

export type AnswerCheck<M extends TentacleMethod> = { ok: true; result: ResultOf<M> } | { ok: false; problems: string };

/**
 * Checks an answer to `method` called with `args` (as parsed by the contract): its shape
 * and sizes, then its agreement with the call. Never throws, whatever `answer` is.
 */
export function checkAnswer<M extends TentacleMethod>(method: M, args: unknown, answer: unknown): AnswerCheck<M> {
  const spec = TENTACLE_METHODS[method];
  const resultSchema: z.ZodTypeAny = spec.result;
  const parsed = resultSchema.safeParse(answer);
  if (!parsed.success) {
    if (parsed.error.issues.some((issue) => issue.path.length === 0)) return { ok: false, problems: `the answer must be an object (got ${describeType(answer)})` };
    return { ok: false, problems: describeProblems(parsed.error.issues.map((issue) => ({ field: issue.path.join('.'), message: issue.message }))) };
  }
  const contradictions = 'contradictions' in spec ? (spec.contradictions as (a: unknown, r: unknown) => Problem[]) : undefined;
  const parsedArgs = (spec.args as z.ZodTypeAny).safeParse(args);
  const problems = contradictions && parsedArgs.success ? contradictions(parsedArgs.data, parsed.data) : [];
  if (problems.length) return { ok: false, problems: describeProblems(problems) };
  return { ok: true, result: parsed.data as ResultOf<M> };
}

function describeProblems(problems: Problem[]): string {
  const named = problems.slice(0, MAX_PROBLEMS_NAMED).map((p) => `${p.field} ${p.message}`);
  const more = problems.length - named.length;
  return named.join('; ') + (more > 0 ? ` (and ${more} more problems)` : '');
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

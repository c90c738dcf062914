import type { z, ZodIssue } from 'zod';
import { HttpError } from './errors.js';

/**
 * Turns zod issues into one message a person can act on: each field path with its
 * problem, e.g. `target.environment: must not be empty; script.body: is required`.
 */
export interface FieldProblem {
  path: string;
  problem: string;
}

export function parseWith<S extends z.ZodTypeAny>(schema: S, value: unknown, what = 'request body'): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data as z.infer<S>;
  const problems = problemsOf(result.error.issues);
  throw new HttpError(
    'REEF_INVALID_REQUEST',
    `The ${what} is not valid: ${problems.map((p) => `${p.path}: ${p.problem}`).join('; ')}.`,
    { details: { problems } },
  );
}

export function problemsOf(issues: readonly ZodIssue[]): FieldProblem[] {
  return issues.flatMap(problemsOfIssue);
}

function problemsOfIssue(issue: ZodIssue): FieldProblem[] {
  const at = (path: (string | number)[]) => (path.length ? path.join('.') : '(body)');
  switch (issue.code) {
    case 'invalid_type':
      if (issue.received === 'undefined') return [{ path: at(issue.path), problem: 'is required' }];
      return [{ path: at(issue.path), problem: `must be ${article(issue.expected)}, not ${issue.received}` }];
    case 'unrecognized_keys':
      return issue.keys.map((key) => ({ path: at([...issue.path, key]), problem: 'is not a known field' }));
    case 'invalid_union_discriminator':
      return [{ path: at(issue.path), problem: `must be one of ${issue.options.map(String).join(', ')}` }];
    case 'invalid_enum_value':
      return [{ path: at(issue.path), problem: `must be one of ${issue.options.map(String).join(', ')}, not "${String(issue.received)}"` }];
    case 'invalid_union':
      return unionProblems(issue.path, issue.unionErrors.map((e) => e.issues));
    default:
      return [{ path: at(issue.path), problem: lowerFirst(issue.message) }];
  }
}

/**
 * A union failed every branch. Report the branch the caller most plausibly meant: the one
 * with the fewest missing or unknown fields. When branches tie, say which shapes exist.
 */
function unionProblems(path: (string | number)[], branches: ZodIssue[][]): FieldProblem[] {
  const shapeMisses = (issues: ZodIssue[]) =>
    issues.filter((i) => i.code === 'unrecognized_keys' || (i.code === 'invalid_type' && i.received === 'undefined')).length;
  const scored = branches.map((issues) => ({ issues, misses: shapeMisses(issues) }));
  const best = Math.min(...scored.map((s) => s.misses));
  const winners = scored.filter((s) => s.misses === best);
  if (winners.length === 1) return problemsOf(winners[0]!.issues);
  const shapes = branches.map((issues) => describeShape(issues)).filter((s) => s !== '');
  const where = path.length ? path.join('.') : '(body)';
  return [{ path: where, problem: shapes.length ? `must have one of these forms: ${shapes.join(' | ')}` : 'matches none of the accepted forms' }];
}

/** The required fields one union branch asked for, e.g. `{workerPool}`. */
function describeShape(issues: ZodIssue[]): string {
  const fields = issues.filter((i) => i.code === 'invalid_type' && i.received === 'undefined').map((i) => String(i.path[i.path.length - 1]));
  return fields.length ? `{${fields.join(', ')}}` : '';
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

// ---------------------------------------------------------------- query strings

function badQuery(name: string, problem: string): HttpError {
  return new HttpError('REEF_INVALID_REQUEST', `The query parameter ${name} ${problem}.`, {
    details: { problems: [{ path: name, problem }] },
  });
}

/** A query parameter as a string; undefined when absent or empty. */
export function queryString(query: URLSearchParams, name: string): string | undefined {
  const value = query.get(name);
  return value === null || value.trim() === '' ? undefined : value.trim();
}

export function queryInt(query: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const raw = queryString(query, name);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) throw badQuery(name, `must be a whole number, not "${raw.slice(0, 40)}"`);
  const value = Number(raw);
  if (value < min || value > max) throw badQuery(name, `must be between ${min} and ${max}, not ${raw}`);
  return value;
}

export function queryEnum<T extends string>(query: URLSearchParams, name: string, allowed: readonly T[]): T | undefined {
  const raw = queryString(query, name);
  if (raw === undefined) return undefined;
  if (!allowed.includes(raw as T)) throw badQuery(name, `must be one of ${allowed.join(', ')}, not "${raw.slice(0, 40)}"`);
  return raw as T;
}

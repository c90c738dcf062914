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

// ---------------------------------------------------------------- query, path, headers

export type StringInput = 'query parameter' | 'path parameter' | 'header';

/**
 * Validates named strings (a query, path parameters, headers) with an object schema: each of
 * its fields is read with `get` (query values and headers trimmed; path parameters as the
 * router decoded them), and an empty value counts as absent. Fields the schema does not
 * name are ignored. A refusal names the first bad field and its value:
 * `The query parameter limit must be a whole number, not "abc".`
 */
export function parseStrings<S extends z.AnyZodObject>(schema: S, get: (name: string) => string | undefined, what: StringInput): z.infer<S> {
  const values: Record<string, string> = {};
  for (const name of Object.keys(schema.shape)) {
    const raw = get(name);
    const value = what === 'path parameter' ? raw : raw?.trim();
    if (value) values[name] = value;
  }
  const result = schema.safeParse(values);
  if (result.success) return result.data as z.infer<S>;
  const problems = result.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? '');
    return { path: name, problem: stringProblem(issue, values[name]) };
  });
  const first = problems[0]!;
  const subject = what === 'header' ? `The ${first.path} header` : `The ${what} ${first.path}`;
  throw new HttpError('REEF_INVALID_REQUEST', `${subject} ${first.problem}.`, { details: { problems } });
}

function stringProblem(issue: ZodIssue, raw: string | undefined): string {
  const shown = `"${(raw ?? '').slice(0, 40)}"`;
  switch (issue.code) {
    case 'invalid_type':
      if (raw === undefined) return 'is required';
      // Only numbers are not strings here: the value was not digits.
      return `must be a whole number, not ${shown}`;
    case 'too_small':
      return `must be at least ${String(issue.minimum)}, not ${raw}`;
    case 'too_big':
      return `must be at most ${String(issue.maximum)}, not ${raw}`;
    case 'invalid_enum_value':
      return `must be one of ${issue.options.map(String).join(', ')}, not ${shown}`;
    default:
      return `${lowerFirst(issue.message)}, not ${shown}`;
  }
}

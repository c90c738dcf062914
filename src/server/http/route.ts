import type { AnyZodObject, z, ZodTypeAny } from 'zod';
import type { Permission } from '../auth/roles.js';
import { readJson, requireMediaType } from './body.js';
import type { ApiContext } from './context.js';
import { parseWith, parseStrings } from './validation.js';

/**
 * A route of the REST API with its contract: the zod schemas of its path parameters,
 * query, headers and body (the route validates its input with them before the handler
 * runs), the responses it gives (their schemas from src/api/contract.ts) and the errors it
 * can answer. The route table (routes/index.ts) is a list of these; the router serves it
 * and the OpenAPI document (openapi.ts) is generated from it, so neither can drift from
 * the other.
 */

export type Method = 'GET' | 'POST' | 'DELETE';

/** Groups of operations in the document. */
export type Tag = 'Server' | 'Machines' | 'Environments' | 'Worker pools' | 'Files' | 'Tasks' | 'API keys' | 'Join tokens' | 'Users' | 'Audit';

/**
 * One answer a route can give: `application/json` with the `json` schema, or
 * `text/event-stream` whose events are named by the keys of `events` (each `data:` the JSON
 * of its schema), or no body (204).
 */
export interface ResponseSpec {
  description: string;
  json?: ZodTypeAny;
  events?: Readonly<Record<string, ZodTypeAny>>;
}

/** A JSON body validated with `json`, or raw bytes (`application/octet-stream`) the handler reads itself. */
export type BodySpec<B extends ZodTypeAny> = { json: B; binary?: never; description?: string } | { binary: string; json?: never; description?: never };

export interface RouteInput<P extends AnyZodObject, Q extends AnyZodObject, H extends AnyZodObject, B extends ZodTypeAny> {
  params: z.infer<P>;
  query: z.infer<Q>;
  headers: z.infer<H>;
  /** The parsed JSON body; undefined for routes without one, or with a binary one. */
  body: z.infer<B>;
}

type EmptyObject = z.ZodObject<Record<string, never>>;

export interface RouteSpec<P extends AnyZodObject, Q extends AnyZodObject, H extends AnyZodObject, B extends ZodTypeAny> {
  method: Method;
  /** `/api/machines/:idOrName`: each `:name` segment is a path parameter (see router.ts). */
  path: string;
  tag: Tag;
  summary: string;
  description?: string;
  /**
   * What the caller must be allowed (src/server/auth/roles.ts), checked by the shared
   * request path before the input is read; `public` for the few routes answered without a
   * key or session (GET /api/ping). Required, so no route can be added without one.
   */
  permission: Permission | 'public';
  /** Also takes a join token in place of a key (POST /api/machines); every other route refuses one with 403. */
  joinToken?: boolean;
  params?: P;
  query?: Q;
  headers?: H;
  body?: BodySpec<B>;
  /** The successful answers, by status. */
  responses: Record<number, ResponseSpec>;
  /**
   * The errors this route itself can answer, by status, each with when. Those of every route
   * are added by the document: 400 when it takes input, 401/403/429 when it needs a key or
   * session, 413/415 when it takes a body, 500.
   */
  errors?: Record<number, string>;
  handler(ctx: ApiContext, input: RouteInput<P, Q, H, B>): Promise<void>;
}

/** A route as the table holds it: its spec, and `run`, which validates the input and calls the handler. */
export interface ApiRoute {
  readonly method: Method;
  readonly path: string;
  readonly public: boolean;
  readonly joinToken: boolean;
  /** null for a public route. */
  readonly permission: Permission | null;
  readonly spec: RouteSpec<AnyZodObject, AnyZodObject, AnyZodObject, ZodTypeAny>;
  run(ctx: ApiContext): Promise<void>;
}

/** The `:name` parameters of a path pattern, in order. */
export function pathParameters(path: string): string[] {
  return path
    .split('/')
    .filter((s) => s.startsWith(':'))
    .map((s) => s.slice(1));
}

/**
 * Declares a route. The path's parameters and the `params` schema must name the same
 * fields: a mismatch is a programming error, thrown when the table is built.
 */
export function route<P extends AnyZodObject = EmptyObject, Q extends AnyZodObject = EmptyObject, H extends AnyZodObject = EmptyObject, B extends ZodTypeAny = z.ZodUndefined>(
  spec: RouteSpec<P, Q, H, B>,
): ApiRoute {
  const inPath = pathParameters(spec.path).sort();
  const declared = Object.keys(spec.params?.shape ?? {}).sort();
  if (inPath.join() !== declared.join()) {
    throw new Error(`route ${spec.method} ${spec.path}: the path has parameters [${inPath.join(', ')}] but params declares [${declared.join(', ')}]`);
  }
  return {
    method: spec.method,
    path: spec.path,
    public: spec.permission === 'public',
    permission: spec.permission === 'public' ? null : spec.permission,
    joinToken: spec.joinToken ?? false,
    spec: spec as unknown as ApiRoute['spec'],
    run: async (ctx) => spec.handler(ctx, await readInput(spec, ctx)),
  };
}

/** Path, query and headers first (cheap, nothing read yet), then the body. */
async function readInput<P extends AnyZodObject, Q extends AnyZodObject, H extends AnyZodObject, B extends ZodTypeAny>(
  spec: RouteSpec<P, Q, H, B>,
  ctx: ApiContext,
): Promise<RouteInput<P, Q, H, B>> {
  const params = spec.params ? parseStrings(spec.params, (name) => ctx.params[name], 'path parameter') : {};
  const query = spec.query ? parseStrings(spec.query, (name) => ctx.query.get(name) ?? undefined, 'query parameter') : {};
  const headers = spec.headers
    ? parseStrings(spec.headers, (name) => {
        const value = ctx.req.headers[name];
        return Array.isArray(value) ? value[0] : value;
      }, 'header')
    : {};
  let body: unknown;
  if (spec.body?.json) body = parseWith(spec.body.json, await readJson(ctx.req, ctx.deps.limits.maxJsonBytes));
  else if (spec.body?.binary) requireMediaType(ctx.req, 'application/octet-stream');
  return { params, query, headers, body } as RouteInput<P, Q, H, B>;
}

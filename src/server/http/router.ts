import { HttpError } from './errors.js';

/**
 * A small path router: patterns such as `/api/machines/:idOrName/health`, matched segment
 * by segment after percent-decoding, so a parameter can hold any character but never a
 * slash. The first route whose pattern and method match wins; a path that matches only
 * under other methods answers 405 with those methods in Allow. HEAD is served by the GET
 * route (RFC 9110 9.3.2: the same headers, no body; Node drops the body of a HEAD answer),
 * so every GET route answers HEAD and says so in Allow.
 */
export interface Route<H> {
  method: string;
  pattern: string;
  handler: H;
}

export type RouteResult<H> =
  | { kind: 'found'; handler: H; params: Record<string, string>; pattern: string }
  | { kind: 'wrong-method'; allow: string[] }
  | { kind: 'not-found' };

interface Compiled<H> extends Route<H> {
  segments: string[];
}

export class Router<H> {
  private readonly routes: Compiled<H>[] = [];

  add(method: string, pattern: string, handler: H): this {
    this.routes.push({ method, pattern, handler, segments: split(pattern) });
    return this;
  }

  match(method: string, pathname: string): RouteResult<H> {
    const parts = split(pathname).map(decodeSegment);
    const allow = new Set<string>();
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) return { kind: 'found', handler: route.handler, params, pattern: route.pattern };
      allow.add(route.method);
      if (route.method === 'GET') allow.add('HEAD');
    }
    return allow.size > 0 ? { kind: 'wrong-method', allow: [...allow].sort() } : { kind: 'not-found' };
  }
}

/** `/a/b/` and `/a/b` are the same path; an empty segment in the middle matches nothing. */
function split(path: string): string[] {
  const trimmed = path.replace(/^\/+/, '').replace(/\/$/, '');
  return trimmed === '' ? [] : trimmed.split('/');
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError('REEF_INVALID_REQUEST', `The path segment "${segment.slice(0, 80)}" is not valid percent-encoding.`);
  }
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | null {
  if (pattern.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const want = pattern[i]!;
    const got = parts[i]!;
    if (want.startsWith(':')) {
      if (got === '') return null;
      params[want.slice(1)] = got;
    } else if (want !== got) {
      return null;
    }
  }
  return params;
}

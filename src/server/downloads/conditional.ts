/**
 * Range and conditional requests (RFC 9110 sections 13 and 14), for one file with a strong
 * ETag (its SHA-256) and a modification time. Pure functions over header values.
 */

export type RangeDecision =
  | { kind: 'full' }
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' };

const SINGLE_RANGE = /^bytes[ \t]*=[ \t]*(\d{0,15})[ \t]*-[ \t]*(\d{0,15})[ \t]*$/i;

/**
 * One byte range of a file of `size` bytes: `first-last`, `first-` or `-suffix`. Several
 * ranges, another unit or a malformed value are ignored (the whole file is sent, which
 * RFC 9110 allows); a range that starts beyond the end is unsatisfiable (416).
 */
export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: 'full' };
  const match = SINGLE_RANGE.exec(header.trim());
  if (!match) return { kind: 'full' };
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return { kind: 'full' };
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
}

/** If-None-Match: `*` or a list of entity tags, compared weakly (a `W/` prefix is ignored). */
export function noneMatch(header: string | undefined, etag: string): boolean | undefined {
  if (header === undefined) return undefined;
  if (header.trim() === '*') return false;
  return !header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/** If-Modified-Since, consulted only without If-None-Match: has the file changed since that date (second precision)? */
export function modifiedSince(header: string | undefined, modified: Date): boolean {
  if (header === undefined) return true;
  const since = Date.parse(header);
  if (Number.isNaN(since)) return true;
  return Math.floor(modified.getTime() / 1000) > Math.floor(since / 1000);
}

/**
 * If-Range: the Range applies only if the client's copy is still current, named by the
 * strong ETag or by the exact Last-Modified date; otherwise the whole file is sent, so a
 * resumed download never splices two versions of a file together.
 */
export function rangeStillValid(header: string | undefined, etag: string, modified: Date): boolean {
  if (header === undefined) return true;
  const value = header.trim();
  if (value.startsWith('"') || value.startsWith('W/')) return value === etag;
  const date = Date.parse(value);
  return !Number.isNaN(date) && Math.floor(date / 1000) === Math.floor(modified.getTime() / 1000);
}

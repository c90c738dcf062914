/**
 * Shared helpers for the property tests in test/fuzz. Each property module exports
 * functions taking a number of runs, so `npm test` runs them bounded (RUNS, below) and
 * `npm run fuzz` (scripts/fuzz.ts) runs the very same properties much longer.
 */
import fc from 'fast-check';
import { ReefError, type ErrorCode } from '../../src/errors.js';

// Failures print the property's own error, not only the counterexample.
fc.configureGlobal({ ...fc.readConfigureGlobal(), includeErrorInReport: true });

/** Runs per property inside `npm test`: small, so the folder stays within seconds. */
export const TEST_RUNS = Number(process.env.FUZZ_TEST_RUNS ?? 100);

/** Rejects when `promise` neither resolves nor rejects within `ms`: a hang is a failure. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`HANG: ${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Settles a promise into a value or an error, for properties that accept both outcomes. */
export async function settle<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Asserts `err` is a ReefError whose code is one of `codes`, with a non-empty message. */
export function expectReefError(err: unknown, codes: readonly ErrorCode[], context = ''): ReefError {
  if (!(err instanceof ReefError)) {
    throw new Error(`expected a ReefError (${codes.join('|')})${context ? ` for ${context}` : ''}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  }
  if (!codes.includes(err.code)) throw new Error(`expected one of ${codes.join('|')}, got ${err.code}: ${err.message}`);
  if (!err.message) throw new Error(`${err.code} has an empty message`);
  return err;
}

/** Splits `data` at the given cut points (any numbers; taken modulo the length, sorted). */
export function splitAt(data: Buffer, cuts: number[]): Buffer[] {
  if (data.length === 0) return [data];
  const points = [...new Set(cuts.map((c) => Math.abs(c) % (data.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    if (p > from) parts.push(data.subarray(from, p));
    from = Math.max(from, p);
  }
  parts.push(data.subarray(from));
  return parts.filter((p) => p.length > 0);
}

export function splitString(text: string, cuts: number[]): string[] {
  if (text.length === 0) return [];
  const points = [...new Set(cuts.map((c) => Math.abs(c) % (text.length + 1)))].sort((a, b) => a - b);
  const parts: string[] = [];
  let from = 0;
  for (const p of points) {
    if (p > from) parts.push(text.slice(from, p));
    from = Math.max(from, p);
  }
  parts.push(text.slice(from));
  return parts.filter((p) => p.length > 0);
}

/** JSON.stringify then parse: what a value looks like after a trip through JSON (-0 becomes 0). */
export function viaJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value ?? null));
}

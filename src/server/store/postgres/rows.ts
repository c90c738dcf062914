import pg from 'pg';

/**
 * Row shapes as the pool's type parsers deliver them: timestamptz as ISO strings, bigint as
 * numbers, json parsed. The parsers are set per pool, never on pg's global registry, so
 * nothing else in the process that uses pg is changed.
 */
const TIMESTAMPTZ = 1184;
const INT8 = 20;

const parseTimestamptz = pg.types.getTypeParser(TIMESTAMPTZ, 'text') as (value: string) => Date;

export const typeParsers: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    // Every bigint here (task numbers, log seqs, identity ids, counts) stays far below 2^53.
    if (oid === INT8) return (value: string) => Number(value);
    if (oid === TIMESTAMPTZ) return (value: string) => parseTimestamptz(value).toISOString();
    return pg.types.getTypeParser(oid, format ?? 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * PostgreSQL text cannot hold U+0000, which script output (and so a log line) may contain.
 * It is stored as U+FFFD, the replacement character, rather than failing the whole batch.
 * (SQLite keeps it; names cannot contain it on either, input.ts refuses control characters.)
 */
export function pgText(text: string): string {
  return text.includes('\0') ? text.replaceAll('\0', '\uFFFD') : text;
}

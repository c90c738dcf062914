/**
 * Writes docs/errors.md from the catalogue in src/error-codes.ts, so the page cannot drift
 * from the codes Reef uses (test/errors/catalogue.test.ts fails when it has).
 *
 * Usage: npm run docs:errors
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ERROR_CODES, FORMER_CODES, type ErrorCode, type Retry } from '../src/error-codes.js';

export const ERRORS_DOC_PATH = resolve(import.meta.dirname, '..', 'docs', 'errors.md');

const RETRY: Record<Retry, string> = {
  no: 'no',
  later: 'later',
  reconnect: 'on reconnect',
  'link-lost': 'link lost',
};

export function renderErrorsDoc(): string {
  const rows = (Object.keys(ERROR_CODES) as ErrorCode[]).map((code) => {
    const { http, retry, meaning } = ERROR_CODES[code];
    return `| \`${code}\` | ${http ?? '-'} | ${RETRY[retry]} | ${meaning.replace(/\|/g, '\\|')} |`;
  });
  const former = Object.entries(FORMER_CODES).map(([old, today]) => `| \`${old}\` | \`${today}\` |`);
  return [
    '# Error codes',
    '',
    '<!-- Generated from src/error-codes.ts by `npm run docs:errors`; edit the catalogue, not this page. -->',
    '',
    'Every failure Reef reports on purpose carries one of these codes: in API error bodies',
    '(`{"error": {"code", "message", "details"?}}`, see [api.md](api.md)), in the RPC errors and',
    'verdicts between server and Tentacle (see [protocol.md](protocol.md)), and in the logs. The',
    'message says what happened and what to do next; the code is what programs and tests match on.',
    '',
    '- **HTTP**: the status of an API answer with this code. `-`: not an HTTP error; its messages',
    '  are not written for API callers, so if one reaches the API the answer is `500 REEF_INTERNAL`',
    "  and the message goes to the server's log.",
    '- **retry**: whether the same request may succeed when made again. `later`: after a while',
    '  (busy, rate limited, a timeout), nothing repeats it by itself; `on reconnect`: once the peer',
    '  can be reached, and the server makes idempotent Tentacle calls again by itself; `link lost`:',
    '  the same, the link dropped under the call (file pushes resume where they stopped).',
    '- A code this version does not know, received from a newer peer, is reported as',
    '  `REEF_PEER_ERROR` with the peer\'s message (an unknown verdict as `REEF_REFUSED`).',
    '',
    '| code | HTTP | retry | meaning |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    '## Former codes',
    '',
    'Codes that were merged into another. Older Tentacles may still send them; they are read as',
    "today's code.",
    '',
    '| former code | read as |',
    '| --- | --- |',
    ...former,
    '',
  ].join('\n');
}

if (import.meta.filename === process.argv[1]) {
  writeFileSync(ERRORS_DOC_PATH, renderErrorsDoc());
  process.stdout.write(`wrote ${ERRORS_DOC_PATH} (${Object.keys(ERROR_CODES).length} codes)\n`);
}

/**
 * Properties of the two incremental text parsers on the client side: the SSE reader
 * (src/api/client.ts readEvents) and the CONNECT response head parser
 * (src/comms/carriers/proxy.ts parseResponseHead). However the bytes are split, the
 * result equals parsing the whole.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import fc from 'fast-check';
import { readEvents } from '../../src/api/client.js';
import { MAX_PROXY_HEAD_BYTES, parseResponseHead } from '../../src/comms/carriers/proxy.js';
import { ReefError } from '../../src/errors.js';
import { expectReefError, splitAt, withTimeout } from './util.js';

type Event = { event: string; data: string; id?: string };

async function parseSse(pieces: Buffer[]): Promise<Event[]> {
  const stream = new PassThrough();
  const events: Event[] = [];
  const reading = (async () => {
    for await (const e of readEvents(stream as unknown as IncomingMessage)) events.push({ event: e.event, data: e.data, ...(e.id !== undefined ? { id: e.id } : {}) });
  })();
  for (const piece of pieces) {
    stream.write(piece);
    await tick();
  }
  stream.end();
  await withTimeout(reading, 3000, 'readEvents');
  return events;
}

/** A line value: anything but a newline (SSE has no escaping). */
const lineValue = fc.string({ unit: fc.oneof(fc.string({ minLength: 1, maxLength: 1 }), fc.constantFrom('é', '💥', '\u2028', ':', ' ', '\r')), maxLength: 30 }).filter((s) => !s.includes('\n'));

const eventArb = fc.record(
  {
    event: fc.option(lineValue, { nil: undefined }),
    id: fc.option(lineValue, { nil: undefined }),
    data: fc.array(lineValue, { minLength: 1, maxLength: 4 }),
    comment: fc.option(lineValue, { nil: undefined }),
  },
  { noNullPrototype: true },
);

/** Events as the server writes them, in random byte pieces (UTF-8 split mid-character too): all of them, in order. */
export async function sseChunking(runs: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.array(eventArb, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 }), fc.boolean(), async (events, cuts, pings) => {
      const text = events
        .map((e) =>
          [
            ...(e.comment !== undefined ? [`:${e.comment}`] : []),
            ...(e.id !== undefined ? [`id: ${e.id}`] : []),
            ...(e.event !== undefined ? [`event: ${e.event}`] : []),
            ...e.data.map((d) => `data: ${d}`),
          ].join('\n') + '\n\n' + (pings ? ': ping\n\n' : ''),
        )
        .join('');
      const expected = events.map((e) => ({ event: e.event ?? 'message', data: e.data.join('\n'), ...(e.id !== undefined ? { id: e.id } : {}) }));
      const bytes = Buffer.from(text, 'utf8');
      assert.deepEqual(await parseSse([bytes]), expected);
      assert.deepEqual(await parseSse(splitAt(bytes, cuts)), expected);
    }),
    { numRuns: runs },
  );
}

/** Any text at all, in random pieces: the same events as in one piece; never throws. */
export async function sseRandomText(runs: number): Promise<void> {
  const textArb = fc.oneof(
    fc.string({ unit: fc.constantFrom('a', 'data', 'event', 'id', ':', ' ', '\n', '\n\n', 'é', '\r'), maxLength: 80 }),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
  );
  await fc.assert(
    fc.asyncProperty(textArb, fc.array(fc.nat(), { maxLength: 20 }), async (text, cuts) => {
      const bytes = Buffer.from(text, 'utf8');
      assert.deepEqual(await parseSse(splitAt(bytes, cuts)), await parseSse([bytes]));
    }),
    { numRuns: runs },
  );
}

const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}$/);
const headerValue = fc.oneof(fc.constant(''), fc.stringMatching(/^[!-~]([ -~]{0,30}[!-~])?$/));

/**
 * A well-formed response head (CRLF or bare LF, any headers) plus tunnel bytes, fed as a
 * growing buffer: null until the blank line, then the same head as parsing it whole, with
 * `length` pointing at the first tunnel byte.
 */
export function proxyHeadSplits(runs: number): void {
  const headArb = fc.record({
    minor: fc.constantFrom('0', '1'),
    status: fc.integer({ min: 100, max: 599 }),
    reason: fc.option(fc.stringMatching(/^[ -~]{0,30}$/), { nil: undefined }),
    headers: fc.array(fc.tuple(token, fc.constantFrom(':', ': ', ':\t', ':  '), headerValue, fc.constantFrom(' ', '', '\t')), { maxLength: 8 }),
    eols: fc.array(fc.constantFrom('\r\n', '\n'), { minLength: 10, maxLength: 10 }),
    tunnel: fc.uint8Array({ maxLength: 40 }),
  });
  fc.assert(
    fc.property(headArb, fc.array(fc.nat(), { maxLength: 10 }), (h, cuts) => {
      const eol = (i: number) => h.eols[i % h.eols.length]!;
      const lines = [`HTTP/1.${h.minor} ${h.status}${h.reason !== undefined ? ` ${h.reason}` : ''}`, ...h.headers.map(([n, sep, v, trail]) => `${n}${sep}${v}${trail}`)];
      const headText = lines.map((l, i) => l + eol(i)).join('') + eol(lines.length);
      const head = Buffer.from(headText, 'latin1');
      const data = Buffer.concat([head, h.tunnel]);
      const whole = parseResponseHead(data);
      assert.ok(whole, 'a complete head parses');
      assert.equal(whole.status, h.status);
      assert.equal(whole.length, head.length);
      const expected = new Map<string, string>();
      for (const [n, , v] of h.headers) {
        const name = n.toLowerCase();
        expected.set(name, expected.has(name) ? `${expected.get(name)}, ${v}` : v);
      }
      assert.deepEqual(whole.headers, expected);
      let received = Buffer.alloc(0);
      let result: ReturnType<typeof parseResponseHead> = null;
      for (const piece of splitAt(data, cuts)) {
        received = Buffer.concat([received, piece]);
        result = parseResponseHead(received);
        if (result) break;
        assert.ok(received.length < head.length, 'null although the head was complete');
      }
      assert.deepEqual(result, whole);
    }),
    { numRuns: runs },
  );
}

/** Random bytes, whole or growing: null (need more), a head, or REEF_PROXY_PROTOCOL; the limit is enforced. */
export function proxyHeadRandom(runs: number): void {
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    fc.tuple(fc.constantFrom('HTTP/1.1 ', 'HTTP/1.0 200', 'HTTP/1.1 200 OK\r\n', 'HTTP/2 200\r\n\r\n', 'HTTP/1.1 999 x\r\n\r\n'), fc.uint8Array({ maxLength: 200 })).map(([p, b]) => Buffer.concat([Buffer.from(p), Buffer.from(b)])),
  );
  fc.assert(
    fc.property(bytes, fc.integer({ min: 1, max: 400 }), (data, limit) => {
      try {
        const head = parseResponseHead(data, limit);
        if (head) {
          assert.ok(head.status >= 100 && head.status <= 599);
          assert.ok(head.length > 0 && head.length <= Math.min(data.length, limit + 2));
        } else {
          assert.ok(data.length < limit, 'null although the limit was reached');
        }
      } catch (err) {
        expectReefError(err, ['REEF_PROXY_PROTOCOL']);
      }
    }),
    { numRuns: runs },
  );
  // A proxy that never ends its head is refused at the default limit, not buffered forever.
  assert.throws(() => parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\n' + 'X: y\r\n'.repeat(MAX_PROXY_HEAD_BYTES / 6 + 1))), (e: unknown) => e instanceof ReefError && e.code === 'REEF_PROXY_PROTOCOL');
}

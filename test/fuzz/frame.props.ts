/**
 * Properties of the comms framing (src/comms/frame.ts) and the verdict (src/comms/verdict.ts):
 * whatever bytes arrive, in whatever pieces, readFrame settles with the value or a
 * ReefError with a clear code, promptly, and never throws past its promise.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import fc from 'fast-check';
import { encodeFrame, readFrame } from '../../src/comms/frame.js';
import { readVerdict, writeVerdict } from '../../src/comms/verdict.js';
import { ReefError } from '../../src/errors.js';
import { expectReefError, settle, splitAt, viaJson, withTimeout } from './util.js';

const MAGIC = Buffer.from('REEF\x01', 'latin1');
const FRAME_ERRORS = ['REEF_PROTOCOL_ERROR', 'REEF_MESSAGE_TOO_LARGE', 'REEF_CONNECTION_LOST'] as const;
const HANG_MS = 3000;

const magicArb = fc.option(fc.constant(MAGIC), { nil: undefined });
const cutsArb = fc.array(fc.nat(), { maxLength: 12 });

/** Writes the pieces one event-loop turn apart (so each arrives as its own 'readable'), then ends. */
async function feed(stream: PassThrough, pieces: Buffer[], end: 'end' | 'destroy' | 'none' = 'end'): Promise<void> {
  for (const piece of pieces) {
    if (stream.destroyed) return;
    stream.write(piece);
    await tick();
  }
  if (end === 'end') stream.end();
  else if (end === 'destroy') stream.destroy();
}

async function readAllLeft(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** encode -> readFrame in random pieces gives the value back, and leaves what followed on the stream. */
export async function frameRoundTrip(runs: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.jsonValue(), magicArb, cutsArb, fc.uint8Array({ maxLength: 64 }), async (value, magic, cuts, trailing) => {
      const frame = encodeFrame(value, 1 << 20, magic);
      const stream = new PassThrough();
      const reading = readFrame(stream, 1 << 20, magic);
      const feeding = feed(stream, splitAt(Buffer.concat([frame, trailing]), cuts));
      const got = await withTimeout(reading, HANG_MS, 'readFrame of a valid frame');
      assert.deepEqual(got, viaJson(value));
      await feeding;
      assert.deepEqual(await withTimeout(readAllLeft(stream), HANG_MS, 'rest of the stream'), Buffer.from(trailing));
    }),
    { numRuns: runs },
  );
}

/** Random bytes in random pieces, then end: a value (when they happen to be a frame) or a clear ReefError. */
export async function frameRandomBytes(runs: number): Promise<void> {
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    // Plausible headers: a small length and random "JSON".
    fc.tuple(fc.boolean(), fc.nat({ max: 80 }), fc.uint8Array({ maxLength: 100 })).map(([withMagic, len, body]) => {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(len);
      return Buffer.concat([withMagic ? MAGIC : Buffer.alloc(0), head, body]);
    }),
  );
  await fc.assert(
    fc.asyncProperty(bytes, magicArb, fc.nat({ max: 200 }), cutsArb, async (data, magic, maxBytes, cuts) => {
      const stream = new PassThrough();
      const reading = settle(readFrame(stream, maxBytes, magic));
      void feed(stream, splitAt(data, cuts));
      const result = await withTimeout(reading, HANG_MS, 'readFrame of random bytes');
      if (!result.ok) expectReefError(result.error, FRAME_ERRORS);
      stream.destroy();
    }),
    { numRuns: runs },
  );
}

/** A valid frame cut short, then the stream ends (or is destroyed): REEF_CONNECTION_LOST. */
export async function frameTruncated(runs: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.jsonValue(), magicArb, fc.nat(), cutsArb, fc.constantFrom('end' as const, 'destroy' as const), async (value, magic, cut, cuts, how) => {
      const frame = encodeFrame(value, 1 << 20, magic);
      const prefix = frame.subarray(0, cut % frame.length);
      const stream = new PassThrough();
      const reading = settle(readFrame(stream, 1 << 20, magic));
      void feed(stream, splitAt(prefix, cuts), how);
      const result = await withTimeout(reading, HANG_MS, 'readFrame of a truncated frame');
      assert.equal(result.ok, false, 'a truncated frame must not produce a value');
      expectReefError((result as { error: unknown }).error, ['REEF_CONNECTION_LOST']);
    }),
    { numRuns: runs },
  );
}

/**
 * A length prefix over the limit is refused as soon as the prefix is in, without waiting
 * for the body or the end of the stream; a wrong magic likewise. encodeFrame refuses to
 * build an oversized frame.
 */
export async function frameOversizedAndBadMagic(runs: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.nat({ max: 4096 }), fc.integer({ min: 1, max: 0xffffffff }), magicArb, cutsArb, async (maxBytes, extra, magic, cuts) => {
      const length = Math.min(0xffffffff, maxBytes + extra);
      const head = Buffer.alloc(4);
      head.writeUInt32BE(length);
      const stream = new PassThrough();
      const reading = settle(readFrame(stream, maxBytes, magic));
      void feed(stream, splitAt(Buffer.concat([magic ?? Buffer.alloc(0), head]), cuts), 'none');
      const result = await withTimeout(reading, HANG_MS, 'readFrame of an oversized length');
      assert.equal(result.ok, false);
      const err = expectReefError((result as { error: unknown }).error, ['REEF_MESSAGE_TOO_LARGE']);
      assert.match(err.message, new RegExp(`${length} bytes exceeds the limit of ${maxBytes}`));
      stream.destroy();
    }),
    { numRuns: runs },
  );
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ minLength: 5, maxLength: 5 }), fc.uint8Array({ minLength: 4, maxLength: 40 }), cutsArb, async (badMagic, rest, cuts) => {
      fc.pre(!Buffer.from(badMagic).equals(MAGIC));
      const stream = new PassThrough();
      const reading = settle(readFrame(stream, 1024, MAGIC));
      void feed(stream, splitAt(Buffer.concat([badMagic, rest]), cuts), 'none');
      const result = await withTimeout(reading, HANG_MS, 'readFrame with a wrong preamble');
      assert.equal(result.ok, false);
      expectReefError((result as { error: unknown }).error, ['REEF_PROTOCOL_ERROR']);
      stream.destroy();
    }),
    { numRuns: runs },
  );
  fc.assert(
    fc.property(fc.jsonValue(), fc.nat({ max: 64 }), (value, maxBytes) => {
      const size = Buffer.byteLength(JSON.stringify(value ?? null));
      try {
        const frame = encodeFrame(value, maxBytes);
        assert.ok(size <= maxBytes, 'encodeFrame built a frame over the limit');
        assert.equal(frame.readUInt32BE(0), size);
      } catch (err) {
        assert.ok(size > maxBytes, `encodeFrame refused a frame within the limit: ${String(err)}`);
        expectReefError(err, ['REEF_MESSAGE_TOO_LARGE']);
      }
    }),
    { numRuns: runs },
  );
}

/** Frames back to back, then maybe garbage: each frame is read in order, then a clear error; never a hang. */
export async function frameSequence(runs: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 5 }), fc.uint8Array({ maxLength: 20 }), cutsArb, async (values, junk, cuts) => {
      const data = Buffer.concat([...values.map((v) => encodeFrame(v, 1 << 20)), junk]);
      const stream = new PassThrough();
      void feed(stream, splitAt(data, cuts));
      const got: unknown[] = [];
      for (;;) {
        const result = await withTimeout(settle(readFrame(stream, 1 << 20)), HANG_MS, `readFrame #${got.length + 1} of ${values.length} frames`);
        if (!result.ok) {
          expectReefError(result.error, FRAME_ERRORS);
          break;
        }
        got.push(result.value);
        if (got.length > values.length + 5) break;
      }
      assert.deepEqual(got.slice(0, values.length), values.map(viaJson));
    }),
    { numRuns: runs },
  );
}

/** The verdict: a round trip keeps it; random bytes give a Verdict or a clear ReefError. */
export async function verdictProperties(runs: number): Promise<void> {
  const verdict = fc.record({ ok: fc.boolean(), code: fc.string({ maxLength: 40 }), message: fc.string({ maxLength: 500 }) }, { requiredKeys: ['ok'] });
  await fc.assert(
    fc.asyncProperty(verdict, async (v) => {
      const stream = new PassThrough();
      await writeVerdict(stream, v);
      const got = await withTimeout(readVerdict(stream), HANG_MS, 'readVerdict');
      assert.deepEqual(got, { code: undefined, message: undefined, ...v });
    }),
    { numRuns: runs },
  );
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    fc.jsonValue().map((v) => encodeFrame(v, 1 << 20, MAGIC)),
    fc.tuple(fc.jsonValue(), fc.nat()).map(([v, cut]) => {
      const f = encodeFrame(v, 1 << 20, MAGIC);
      return f.subarray(0, cut % (f.length + 1));
    }),
  );
  await fc.assert(
    fc.asyncProperty(bytes, cutsArb, async (data, cuts) => {
      const stream = new PassThrough();
      const reading = settle(readVerdict(stream));
      void feed(stream, splitAt(data, cuts));
      const result = await withTimeout(reading, HANG_MS, 'readVerdict of random bytes');
      if (result.ok) {
        assert.equal(typeof result.value.ok, 'boolean');
        for (const field of ['code', 'message'] as const) assert.ok(result.value[field] === undefined || typeof result.value[field] === 'string');
      } else {
        expectReefError(result.error, FRAME_ERRORS);
      }
    }),
    { numRuns: runs },
  );
}

/**
 * Over real loopback TCP: a client sends random bytes (or a valid frame, cut anywhere)
 * in random pieces and then ends, or resets the connection. The server side's readFrame
 * settles with the value or an error with a code, and the listener keeps accepting.
 */
export async function frameOverSockets(runs: number): Promise<void> {
  const results: Array<Promise<{ ok: boolean; error?: unknown }>> = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.pause();
    results.push(
      settle(readFrame(socket, 512, MAGIC)).then((r) => {
        socket.destroy();
        return r;
      }),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const payload = fc.oneof(
    fc.uint8Array({ maxLength: 700 }).map((b) => Buffer.from(b)),
    fc.tuple(fc.jsonValue({ maxDepth: 3 }), fc.nat()).map(([v, cut]) => {
      const f = encodeFrame(v, 1 << 20, MAGIC);
      return f.subarray(0, (cut % (f.length + 1)) || f.length);
    }),
  );
  try {
    await fc.assert(
      fc.asyncProperty(payload, cutsArb, fc.constantFrom('end', 'reset'), async (data, cuts, how) => {
        const before = results.length;
        const client = net.connect(port, '127.0.0.1');
        client.on('error', () => {});
        await once(client, 'connect');
        for (const piece of splitAt(data, cuts)) {
          client.write(piece);
          await tick();
        }
        if (how === 'end') client.end();
        else client.resetAndDestroy();
        const deadline = Date.now() + HANG_MS;
        while (results.length === before) {
          if (Date.now() > deadline) throw new Error('HANG: the server never accepted the connection');
          await new Promise((r) => setTimeout(r, 2));
        }
        const result = await withTimeout(results[before]!, HANG_MS, 'readFrame on a socket');
        client.destroy();
        if (!result.ok) {
          const err = result.error as NodeJS.ErrnoException;
          if (err instanceof ReefError) expectReefError(err, FRAME_ERRORS);
          // A reset surfaces as the socket's own error (ECONNRESET); callers wrap it (dialer, rpc).
          else assert.ok(how === 'reset' && typeof err.code === 'string', `unexpected error ${String(err)}`);
        }
      }),
      { numRuns: runs },
    );
  } finally {
    server.close();
  }
}

/**
 * readFrame on a stream that has already ended or been destroyed (all its frames read,
 * its 'end' already emitted) rejects with REEF_CONNECTION_LOST instead of waiting for an
 * event that will never come.
 */
export async function frameAfterEnd(runs: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }), fc.constantFrom('end', 'destroy'), async (values, how) => {
      const stream = new PassThrough();
      for (const v of values) stream.write(encodeFrame(v, 1 << 20));
      stream.end();
      for (const v of values) assert.deepEqual(await withTimeout(readFrame(stream, 1 << 20), HANG_MS, 'readFrame'), viaJson(v));
      if (how === 'destroy') stream.destroy();
      await new Promise((r) => setTimeout(r, 1));
      const result = await withTimeout(settle(readFrame(stream, 1 << 20)), HANG_MS, 'readFrame on an ended stream');
      assert.equal(result.ok, false);
      expectReefError((result as { error: unknown }).error, ['REEF_CONNECTION_LOST']);
    }),
    { numRuns: runs },
  );
}

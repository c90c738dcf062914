import type { Readable } from 'node:stream';
import { ReefError } from '../errors.js';

/**
 * A frame is an optional magic prefix, a 4-byte big-endian length, then that many bytes
 * of UTF-8 JSON. Calls carry their arguments and results as one frame each, followed by
 * an optional raw body (docs/protocol.md).
 */
export function encodeFrame(value: unknown, maxBytes: number, magic?: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(value ?? null), 'utf8');
  if (json.length > maxBytes) throw tooLarge(json.length, maxBytes);
  const prefix = magic ?? EMPTY;
  const frame = Buffer.allocUnsafe(prefix.length + 4 + json.length);
  prefix.copy(frame, 0);
  frame.writeUInt32BE(json.length, prefix.length);
  json.copy(frame, prefix.length + 4);
  return frame;
}

const EMPTY = Buffer.alloc(0);

function tooLarge(size: number, max: number): ReefError {
  return new ReefError(
    'REEF_MESSAGE_TOO_LARGE',
    `A message of ${size} bytes exceeds the limit of ${max} bytes (comms option maxMessageBytes). ` +
      'Send large content as a streamed body instead.',
  );
}

/**
 * Reads exactly one frame from a paused stream and puts back whatever followed it, so the
 * same stream can then be handed on (to HTTP/2, or to a handler as its body). Rejects on
 * a wrong magic, an oversized length, invalid JSON, or the stream ending first.
 */
export function readFrame(stream: Readable, maxBytes: number, magic?: Buffer): Promise<unknown> {
  const prefixLength = (magic?.length ?? 0) + 4;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let payloadLength = -1;
    let done = false;

    const finish = (err: Error | null, value?: unknown) => {
      done = true;
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.off('error', onError);
      if (err) reject(err);
      else resolve(value);
    };
    const onEnd = () => finish(new ReefError('REEF_CONNECTION_LOST', 'The peer closed the stream in the middle of a message.'));
    const onError = (err: Error) => finish(err);
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = stream.read() as Buffer | null) !== null) {
        chunks.push(chunk);
        received += chunk.length;
        if (payloadLength < 0 && received >= prefixLength) {
          const head = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          if (magic && !head.subarray(0, magic.length).equals(magic)) {
            return finish(new ReefError('REEF_PROTOCOL_ERROR', 'The peer does not speak the Reef comms protocol (bad preamble).'));
          }
          payloadLength = head.readUInt32BE(magic?.length ?? 0);
          if (payloadLength > maxBytes) return finish(tooLarge(payloadLength, maxBytes));
        }
        if (payloadLength >= 0 && received >= prefixLength + payloadLength) {
          const all = Buffer.concat(chunks);
          const end = prefixLength + payloadLength;
          if (all.length > end) stream.unshift(all.subarray(end));
          try {
            return finish(null, JSON.parse(all.subarray(prefixLength, end).toString('utf8')));
          } catch {
            return finish(new ReefError('REEF_PROTOCOL_ERROR', 'The peer sent a message that is not valid JSON.'));
          }
        }
      }
    };
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    stream.on('error', onError);
    onReadable();
    // A stream that has already ended or been destroyed emits neither event again.
    if (!done && (stream.readableEnded || stream.destroyed)) onEnd();
  });
}

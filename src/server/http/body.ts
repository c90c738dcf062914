import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

/**
 * Request bodies: the media type is checked before a byte is read, the declared length
 * before reading, the actual length while reading (chunked bodies declare none).
 */

/** The media type without parameters, lowercased; '' when absent. */
export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

export function requireMediaType(req: IncomingMessage, expected: string): void {
  const got = mediaType(req);
  if (got !== expected) {
    throw new HttpError(
      'REEF_UNSUPPORTED_MEDIA_TYPE',
      `This endpoint takes a body of type ${expected}, but the request sent ${got ? `"${got}"` : 'no Content-Type'}. Set Content-Type: ${expected}.`,
    );
  }
}

export function tooLarge(limit: number, what: string): HttpError {
  return new HttpError('REEF_TOO_LARGE', `The ${what} is larger than the limit of ${limit} bytes.`);
}

/** Refuses early when Content-Length already says the body is over the limit. */
export function checkDeclaredLength(req: IncomingMessage, limit: number, what: string): void {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit, what);
}

/** Reads and parses a JSON body (Content-Type application/json, at most `limit` bytes). */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  requireMediaType(req, 'application/json');
  const charset = /;\s*charset=("?)([^";]+)\1/i.exec(req.headers['content-type'] ?? '')?.[2]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new HttpError('REEF_UNSUPPORTED_MEDIA_TYPE', `JSON bodies must be UTF-8, but the request declared charset "${charset}".`);
  }
  checkDeclaredLength(req, limit, 'request body');
  const text = decodeUtf8(await readBytes(req, limit));
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError('REEF_BAD_JSON', `the request body is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * JSON is UTF-8 (RFC 8259 8.1). A lenient decoder would store U+FFFD in place of each bad
 * byte and answer 201 for data the caller never sent, so a bad sequence is refused instead.
 * A byte order mark is kept, and JSON.parse then refuses it as before.
 */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes: Buffer): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new HttpError('REEF_BAD_JSON', `the request body is not valid UTF-8 (at byte ${firstBadUtf8Byte(bytes)}); JSON must be sent as UTF-8.`);
  }
}

/**
 * The offset where the first malformed character starts: the longest prefix a streaming
 * decoder accepts (an unfinished character at its end is not yet an error) is found by
 * halving, since a prefix that fails makes every longer one fail. Only computed for a body
 * being refused.
 */
function firstBadUtf8Byte(bytes: Buffer): number {
  const acceptable = (length: number) => {
    try {
      new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(0, length), { stream: true });
      return true;
    } catch {
      return false;
    }
  };
  let low = 0;
  let high = bytes.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (acceptable(mid)) low = mid;
    else high = mid - 1;
  }
  // The longest acceptable prefix may end in the first bytes of the character that then
  // breaks (a lead byte whose continuation is missing): that character is where it starts.
  if (isUtf8(bytes.subarray(0, low))) return low;
  let lead = low - 1;
  while (lead > 0 && (bytes[lead]! & 0xc0) === 0x80) lead--;
  return lead;
}

function readBytes(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const detach = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        detach();
        req.pause();
        reject(tooLarge(limit, 'request body'));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      detach();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      detach();
      reject(err);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

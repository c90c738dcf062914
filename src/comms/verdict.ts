import type { Readable, Writable } from 'node:stream';
import { ReefError } from '../errors.js';
import { encodeFrame, readFrame } from './frame.js';

/**
 * Right after the TLS handshake the accepting side tells the dialling side whether it
 * trusts the certificate it was shown. TLS alone cannot carry that reason (Reef pins
 * thumbprints itself, after the handshake), and an operator needs it: "refused" without
 * saying which thumbprint was presented and what to run wastes an afternoon.
 */
export interface Verdict {
  ok: boolean;
  /** One of src/error-codes.ts when we send it; a peer's is read as sent (errorFromPeer). */
  code?: string;
  message?: string;
}

const MAGIC = Buffer.from('REEF\x01', 'latin1');
const MAX_VERDICT_BYTES = 8 * 1024;

/**
 * Resolves once the verdict has left our buffers. The socket must not be handed to HTTP/2
 * before that: Node's HTTP/2 session takes over the socket's native write queue and
 * aborts the process if it finds a write of ours still in flight.
 */
export function writeVerdict(socket: Writable, verdict: Verdict): Promise<void> {
  return new Promise((resolve) => socket.write(encodeFrame(verdict, MAX_VERDICT_BYTES, MAGIC), () => resolve()));
}

export async function readVerdict(socket: Readable): Promise<Verdict> {
  const value = (await readFrame(socket, MAX_VERDICT_BYTES, MAGIC)) as Partial<Verdict> | null;
  if (!value || typeof value.ok !== 'boolean') {
    throw new ReefError('REEF_PROTOCOL_ERROR', 'The peer sent a malformed Reef verdict.');
  }
  return { ok: value.ok, code: typeof value.code === 'string' ? value.code : undefined, message: typeof value.message === 'string' ? value.message : undefined };
}

import type { Readable } from 'node:stream';
import type { PeerInfo } from '../peer.js';

/** What a service method receives besides its arguments. */
export interface CallContext {
  /** Aborted when the caller cancels, the deadline passes, or the connection drops. */
  signal: AbortSignal;
  peer: PeerInfo;
  /** The streamed request body, when the caller sent one. */
  body: Readable | null;
}

/** A result followed by a streamed body (a file download, say). */
export class StreamingResult {
  constructor(
    readonly result: unknown,
    readonly body: Readable,
  ) {}
}

export type Handler = (args: unknown, context: CallContext) => Promise<unknown>;

/** Methods by name, such as `scripts.start`. */
export type ServiceTable = ReadonlyMap<string, Handler>;

export interface CallOptions {
  signal?: AbortSignal;
  /** Milliseconds this call may take in all; 0 for no deadline. Defaults to the connection's limit. */
  deadlineMs?: number;
  /** Streamed request body (a file upload, say). */
  body?: Readable;
  /** Server side: how long to wait for a polling tentacle to connect, or keep dialling a listening one, instead of the pickup timeout. */
  pickupTimeoutMs?: number;
  /** Server side: told once, in words for a task log, when a listening tentacle could not be reached at first and dialling goes on. */
  onWaiting?(note: string): void;
}

/** Wire details shared by both ends (docs/protocol.md). */
export const RPC_PATH_PREFIX = '/rpc/';
export const HEADER_DEADLINE = 'reef-deadline-ms';
export const HEADER_BODY = 'reef-body';

export interface ErrorEnvelope {
  ok: false;
  error: { code: string; message: string };
}
export interface ResultEnvelope {
  ok: true;
  result: unknown;
}
export type Envelope = ErrorEnvelope | ResultEnvelope;

import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { errorMessage, ReefError } from '../errors.js';
import type { Logger } from '../logging.js';
import { encodeFrame, readFrame } from './frame.js';
import type { CommsLimits } from './limits.js';
import type { PeerInfo } from './peer.js';
import { RPC_PATH_PREFIX, type Envelope } from './rpc/types.js';

/** How long a registration session stays open after its one call, for the Tentacle to read the answer and close it. */
const LINGER_MS = 2000;

/** The one method a registration-only session serves. */
export const REGISTER_METHOD = 'registration.register';

/**
 * Registers the peer (its arguments carry the credentials and the registration request);
 * resolves with the answer for the Tentacle. Errors are answered with their code and
 * message (a ReefError's), so they must be written for the Tentacle's operator.
 */
export type RegistrationHandler = (args: unknown, peer: PeerInfo, signal: AbortSignal) => Promise<unknown>;

/**
 * A registration-only session: what the server serves to a Tentacle that dialled with ALPN
 * `reef-register`, whatever its certificate. Here the roles of HTTP/2 are reversed (the
 * Tentacle is the client, the server answers), and there is exactly one call to answer:
 * `registration.register`, once. Any other method, or a second call, is refused with
 * REEF_REGISTRATION_ONLY; the session is closed 2 s after its one call (the Tentacle closes
 * it as soon as it has the answer), and in any case `registrationTimeoutMs` after it began
 * (a silent peer is cut there). No other service of
 * the server is reachable from it: the session has no route to anything else.
 */
export function serveRegistration(socket: Duplex, peer: PeerInfo, handler: RegistrationHandler, limits: CommsLimits, logger: Logger): Promise<void> {
  const session = http2.performServerHandshake(socket, {
    settings: {
      enablePush: false,
      // One call; a second one opened beside it is answered with a refusal, not queued.
      maxConcurrentStreams: 2,
      maxHeaderListSize: 8 * 1024,
      headerTableSize: 1024,
    },
    maxSessionMemory: 1,
  });
  const signal = new AbortController();
  let called = false;
  const deadline = setTimeout(() => {
    logger.info({ remote: peer.remoteAddress, thumbprint: peer.thumbprint }, `comms: closed a registration session unanswered after ${limits.registrationTimeoutMs} ms`);
    session.destroy();
  }, limits.registrationTimeoutMs);
  session.on('error', (err) => logger.debug({ err: err.message, remote: peer.remoteAddress }, 'comms: registration session error'));
  let linger: NodeJS.Timeout | undefined;
  session.on('stream', (stream, headers) => {
    const first = !called;
    called = true;
    void answer(stream, headers, first).finally(() => {
      // The one call is over; any further one is refused. The Tentacle closes the session
      // once it has its answer: closing it from here at once could cut that answer off on
      // its way through a carrier that buffers (a WebSocket through a proxy).
      if (first) linger ??= setTimeout(() => session.destroy(), LINGER_MS);
    });
  });
  const closed = new Promise<void>((resolve) =>
    session.once('close', () => {
      clearTimeout(deadline);
      clearTimeout(linger);
      signal.abort(new ReefError('REEF_CONNECTION_LOST', 'The registration session closed.'));
      socket.destroy();
      resolve();
    }),
  );

  async function answer(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, first: boolean): Promise<void> {
    const path = headers[':path'] ?? '';
    const method = path.startsWith(RPC_PATH_PREFIX) ? path.slice(RPC_PATH_PREFIX.length) : path;
    stream.on('error', () => {});
    let envelope: Envelope;
    try {
      if (!first) throw new ReefError('REEF_REGISTRATION_ONLY', 'A registration session answers one call; this one had its call already.');
      if (method !== REGISTER_METHOD) {
        throw new ReefError(
          'REEF_REGISTRATION_ONLY',
          `This connection is a registration session (the certificate ${peer.thumbprint} asked to register); it serves ${REGISTER_METHOD} only, not "${method}".`,
        );
      }
      const args = await readFrame(stream, limits.maxRegistrationMessageBytes);
      envelope = { ok: true, result: (await handler(args, peer, signal.signal)) ?? null };
    } catch (err) {
      const known = err instanceof ReefError;
      if (!known) logger.error({ err, remote: peer.remoteAddress }, 'comms: a registration over comms failed unexpectedly');
      else logger.info({ remote: peer.remoteAddress, thumbprint: peer.thumbprint, method, code: err.code }, `comms: refused a registration call: ${errorMessage(err)}`);
      envelope = known
        ? { ok: false, error: { code: err.code, message: err.message } }
        : { ok: false, error: { code: 'REEF_INTERNAL', message: 'The server failed to register this Tentacle; the cause is in the server log.' } };
    }
    if (stream.destroyed) return;
    stream.respond({ ':status': 200 });
    stream.end(encodeFrame(envelope, limits.maxMessageBytes));
    stream.resume(); // whatever the caller still sends is not read
  }

  return closed;
}

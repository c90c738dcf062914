import { ReefError } from '../../errors.js';

/** Node's HTTP/2 errors, in words an operator can act on. */
export function translateStreamError(err: NodeJS.ErrnoException, what: string): ReefError {
  if (err instanceof ReefError) return err;
  const code = err.code ?? '';
  if (code === 'ERR_HTTP2_STREAM_ERROR' && /REFUSED_STREAM/.test(err.message)) {
    return new ReefError('REEF_CALL_REFUSED', `${what} was refused by the peer (too many calls in flight on this connection).`, { cause: err });
  }
  if (code === 'ERR_HTTP2_STREAM_ERROR') {
    return new ReefError('REEF_CALL_RESET', `${what} was reset by the peer (${err.message}).`, { cause: err });
  }
  return new ReefError('REEF_CONNECTION_LOST', `${what} failed because the connection was lost (${err.message}).`, { cause: err });
}

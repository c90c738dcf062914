import type { Thumbprint } from '../pki/thumbprint.js';

/** Who is on the other end of a comms connection, and how they reached us. */
export interface PeerInfo {
  thumbprint: Thumbprint;
  remoteAddress: string;
  /** How the connection arrived or left: 'tcp', 'listening', later 'sni', 'alpn', 'websocket', 'proxy'. */
  carrier: string;
  /**
   * The certificate this end presented on the connection, when it accepted it: after a
   * server certificate rotation a Tentacle may have asked for the previous one.
   */
  presented?: Thumbprint;
  /** The TLS handshake resumed an earlier session (a session ticket) instead of a full one. */
  resumed?: boolean;
}

/** Decides whether a thumbprint is trusted; asked on every connection, so changes apply at once. */
export type TrustCheck = (thumbprint: Thumbprint) => boolean | Promise<boolean>;

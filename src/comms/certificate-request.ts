import type { Thumbprint } from '../pki/thumbprint.js';

/**
 * A Tentacle whose trusted server certificate is no longer the one a server presents (it
 * was offline through a whole certificate rotation) asks for the certificate it trusts by
 * thumbprint, in the TLS server name: the only thing a TLS server can choose its
 * certificate by. The name is under `.invalid` (RFC 6761), so it can never be a real host;
 * the 64 hex digits take two DNS labels (a label holds at most 63).
 */
const SUFFIX = '.reef-certificate.invalid';

export function certificateRequestName(thumbprint: Thumbprint): string {
  const hex = thumbprint.toLowerCase();
  return `${hex.slice(0, 32)}.${hex.slice(32)}${SUFFIX}`;
}

/** The thumbprint a server name asks for, or undefined when it is an ordinary name. */
export function requestedThumbprint(servername: string): Thumbprint | undefined {
  const match = /^([0-9a-f]{32})\.([0-9a-f]{32})\.reef-certificate\.invalid$/i.exec(servername);
  return match ? (match[1]! + match[2]!).toUpperCase() : undefined;
}

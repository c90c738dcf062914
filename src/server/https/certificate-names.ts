import net from 'node:net';
import { hostname } from 'node:os';

/** A DNS name a certificate may carry: letters, digits, hyphens, dot-separated labels of 1 to 63. */
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * The subjectAltName of a server certificate Reef generates: the names it is reached by as
 * far as the node knows when the certificate is made (localhost, the machine's host name,
 * the polling hostnames, the listen address when it is a specific one) and the loopback
 * addresses. The certificate is pinned afterwards, so names configured later are not added;
 * people who need other names give the portal a CA certificate (`--https-certificate`).
 */
export function generatedCertificateNames(options: { host?: string; pollingHostnames?: readonly string[] }): { dns: string[]; ip: string[] } {
  const dns = new Set<string>(['localhost']);
  const ip = new Set<string>(['127.0.0.1', '::1']);
  const candidates = [hostname(), ...(options.pollingHostnames ?? []), ...(options.host ? [options.host] : [])];
  for (const raw of candidates) {
    const name = raw.trim().toLowerCase().replace(/\.$/, '');
    if (net.isIP(name)) {
      if (name !== '0.0.0.0' && name !== '::') ip.add(name);
    } else if (DNS_NAME.test(name)) {
      dns.add(name);
    }
  }
  return { dns: [...dns], ip: [...ip] };
}

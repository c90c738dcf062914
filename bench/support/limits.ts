import { readFileSync } from 'node:fs';
import { DEFAULT_LIMITS } from '../../src/comms/limits.js';

/**
 * The hard limit on open files, which workers raise their own limit to: it caps the
 * connections one server process can hold (20,000 in this project's sandbox, where even
 * root may not raise it).
 */
export function openFileHardLimit(): number {
  const match = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !match || match[1] === 'unlimited' ? Infinity : Number(match[1]);
}

/**
 * How many certificates a simulated fleet of `tentacles` links needs: several links share
 * one certificate (certificates cost CPU to make), but no more than half the server's
 * per-certificate cap, which would otherwise refuse the rest as a flood
 * (REEF_TOO_MANY_CONNECTIONS) and the benchmark would measure refusals.
 */
export function certificatesFor(tentacles: number): number {
  return Math.ceil(tentacles / Math.floor(DEFAULT_LIMITS.maxConnectionsPerCertificate / 2));
}

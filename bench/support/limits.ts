import { readFileSync } from 'node:fs';

/**
 * The hard limit on open files, which workers raise their own limit to: it caps the
 * connections one server process can hold (20,000 in this project's sandbox, where even
 * root may not raise it).
 */
export function openFileHardLimit(): number {
  const match = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !match || match[1] === 'unlimited' ? Infinity : Number(match[1]);
}

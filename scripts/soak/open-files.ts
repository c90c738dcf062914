/**
 * The server holds a socket per tentacle: a soft limit of 1024 open files, common by
 * default, is too low for 2,000 of them. Node cannot raise its own limit, so a soak whose
 * limit is too low runs itself again under bash with `ulimit -n` raised (as far as the
 * hard limit allows; root may raise that too), and the server it starts inherits it.
 * (The fleet's worker processes raise their own, bench/support/workers.ts.)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const RAISED = 'REEF_SOAK_RAISED_OPEN_FILES';
const WANTED = 1_048_576;

export function openFileLimit(): number {
  const match = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !match || match[1] === 'unlimited' ? Infinity : Number(match[1]);
}

/** Returns when the limit is at least `needed`; otherwise re-runs this process with it raised and exits with its code. */
export function ensureOpenFileLimit(needed: number): void {
  if (openFileLimit() >= needed || process.env[RAISED]) return;
  const raise = `ulimit -n ${WANTED} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
  const again = spawnSync('bash', ['-c', raise, 'soak', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [RAISED]: '1' },
  });
  process.exit(again.status ?? 1);
}

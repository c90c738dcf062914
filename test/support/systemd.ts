/**
 * systemd's own checks on unit files, run as users run them: `systemd-analyze verify` and
 * `systemd-analyze security --offline=true`. Both work without systemd as PID 1 (this
 * machine's PID 1 is not systemd): they read the unit file and the unit files installed on
 * the machine, nothing else. `--man=no` keeps verify from looking up man pages.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTracked } from './processes.js';

/** Environment for systemd-analyze: no colours, no pager, warnings and errors only. */
const ANALYZE_ENV = { ...process.env, SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '', SYSTEMD_LOG_LEVEL: 'warning' };

/** Writes `units` (file name -> text) into `dir` and returns their paths. */
export async function writeUnits(dir: string, units: Record<string, string>): Promise<string[]> {
  const paths: string[] = [];
  for (const [name, text] of Object.entries(units)) {
    const path = join(dir, name);
    await writeFile(path, text);
    paths.push(path);
  }
  return paths;
}

/** `systemd-analyze verify`: '' when systemd has nothing to say about the units, else what it said (with the exit code). */
export async function verifyUnits(paths: readonly string[]): Promise<string> {
  const result = await runTracked('systemd-analyze', ['verify', '--man=no', ...paths], { env: ANALYZE_ENV, timeoutMs: 60_000 });
  const said = `${result.stdout}${result.stderr}`.trim();
  return result.code === 0 && said === '' ? '' : `exit ${result.code}: ${said}`;
}

export interface SecurityReport {
  /** The "Overall exposure level" number, 0.0 (locked down) to 10.0. */
  exposure: number;
  /** The full table, for messages. */
  text: string;
}

/** `systemd-analyze security --offline=true` on one unit file. */
export async function unitSecurity(path: string): Promise<SecurityReport> {
  const result = await runTracked('systemd-analyze', ['security', '--offline=true', '--no-pager', path], { env: ANALYZE_ENV, timeoutMs: 60_000 });
  const text = `${result.stdout}${result.stderr}`;
  const match = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(text);
  if (!match) throw new Error(`systemd-analyze security printed no exposure level (exit ${result.code}):\n${text}`);
  return { exposure: Number(match[1]), text };
}

/**
 * After the test suite: fails when a process the run started is still alive, names it,
 * and kills it so the machine is clean for the next run.
 *
 * A process of the run is one whose environment holds REEF_TEST_RUN with this run's value
 * (`npm test` sets it; test/support/processes.ts passes it to every child, and their
 * children inherit it), so an unrelated `reef` or `tentacle` on the machine is never
 * flagged. Processes get a few seconds to finish exiting before they count.
 *
 * Usage: REEF_TEST_RUN=<the run's marker> node --import tsx scripts/check-leftovers.ts
 */
import { readdirSync, readFileSync } from 'node:fs';

const MARKER = 'REEF_TEST_RUN';
const GRACE_MS = 5000;

interface Leftover {
  pid: number;
  command: string;
}

/** Live processes (not this one) whose environment carries `MARKER=run`. */
function processesOfRun(run: string): Leftover[] {
  const wanted = `${MARKER}=${run}`;
  const found: Leftover[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    // This check's own helpers (tsx's esbuild service) carry the marker too.
    if (parentOf(entry) === process.pid) continue;
    let environ: string;
    let cmdline: string;
    try {
      environ = readFileSync(`/proc/${entry}/environ`, 'latin1');
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue; // gone meanwhile, or another user's
    }
    // A zombie reads as empty: it is dead, only not yet reaped, so it never matches.
    if (environ.split('\0').includes(wanted)) found.push({ pid: Number(entry), command: cmdline.split('\0').join(' ').trim() });
  }
  return found;
}

/** The parent pid from /proc/<pid>/stat (after the command name, which may hold spaces). */
function parentOf(pid: string): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const run = process.env[MARKER];
  if (!run) {
    console.error(`check-leftovers: ${MARKER} is not set; run it with the marker the test run gave its processes (npm test sets both).`);
    return 2;
  }
  const deadline = Date.now() + GRACE_MS;
  let left = processesOfRun(run);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    left = processesOfRun(run);
  }
  if (left.length === 0) {
    console.log(`check-leftovers: no process of test run ${run} is left.`);
    return 0;
  }
  console.error(`check-leftovers: ${left.length} process(es) of test run ${run} outlived the suite (a test did not stop them; killed now):`);
  for (const { pid, command } of left) {
    console.error(`  pid ${pid}: ${command}`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  return 1;
}

process.exitCode = await main();

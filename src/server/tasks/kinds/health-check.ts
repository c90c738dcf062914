import { errorMessage } from '../../../errors.js';
import { callRetrying, type MachineOutcome, type MachineRun } from '../machine-run.js';
import type { TaskKind } from '../task-kind.js';

export const healthCheckKind: TaskKind<'health-check', Record<string, never>> = {
  specOf: async () => ({}),
  perform: (run) => healthCheck(run),
};

/**
 * Checks one machine: a round trip and its capabilities. The result joins the machine's
 * health history either way, and its version and platform are kept up to date.
 */
async function healthCheck(run: MachineRun): Promise<MachineOutcome> {
  try {
    const started = process.hrtime.bigint();
    await callRetrying(run, 'health.ping', {}, { deadlineMs: 30_000 });
    const roundTripMs = Number(process.hrtime.bigint() - started) / 1e6;
    const caps = await callRetrying(run, 'capabilities.get', {}, { deadlineMs: 30_000 });
    const shells = Object.entries(caps.shells).filter(([, path]) => path).map(([name]) => name);
    await run.store.recordHealth(run.machine.id, { ok: true, details: { roundTripMs, capabilities: caps as unknown as Record<string, unknown> } });
    await run.store.touchMachine(run.machine.thumbprint, { version: caps.tentacleVersion, platform: { ...caps.os, hostname: caps.hostname, shells } });
    await run.log(
      'info',
      `Healthy: Tentacle ${caps.tentacleVersion} on ${caps.os.platform} ${caps.os.arch} (${caps.hostname}), ` +
        `round trip ${roundTripMs.toFixed(1)} ms, shells: ${shells.join(', ') || 'none'}.`,
    );
    return { state: 'Success', exitCode: null };
  } catch (err) {
    if (run.signal.aborted) throw err;
    await run.store.recordHealth(run.machine.id, { ok: false, details: { error: errorMessage(err) } }).catch(() => {});
    throw err;
  }
}

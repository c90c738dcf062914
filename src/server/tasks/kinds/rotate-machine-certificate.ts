/**
 * Tentacle certificate rotation, one machine at a time within `maxParallel` (docs/operations.md
 * "Rotating Tentacle certificates"). Over the link pinned to the machine's certificate:
 *
 * 1. `certificate.prepareNext`: the Tentacle makes its next certificate (or answers the one
 *    it made already) and answers its thumbprint;
 * 2. the server records it as the machine's next thumbprint: from then on a connection
 *    presenting either certificate is this machine's;
 * 3. `certificate.switch`: the Tentacle makes it current; polling Tentacles dial again with
 *    it, a listening one presents it to the next dial;
 * 4. once the Tentacle connects with it, the server makes it the machine's thumbprint and
 *    revokes the old one (src/server/machine-certificates.ts), and the Tentacle is told to
 *    forget its previous certificate.
 *
 * Every step can be repeated: a re-run after a crash anywhere finds where the Tentacle and
 * the store are, and goes on from there.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_FLEET_MAX_PARALLEL } from '../../../api/fleet.js';
import { ReefError, RETRYABLE_CALL_CODES } from '../../../errors.js';
import { formatDuration } from '../../../format.js';
import type { Thumbprint } from '../../../pki/thumbprint.js';
import type { Machine } from '../../store/types.js';
import { callTentacle, machineAddress, routedEndpoint } from '../../tentacle-client.js';
import { resolveFleetTarget } from '../fleet-targets.js';
import { callRetrying, type MachineOutcome, type MachineRun } from '../machine-run.js';
import type { TaskKind } from '../task-kind.js';
import { fleetTurns } from './slots.js';

interface RotateSpec {
  maxParallel: number;
}

export const rotateMachineCertificateKind: TaskKind<'rotate-machine-certificate', RotateSpec> = {
  specOf: async (request) => ({ maxParallel: request.maxParallel ?? DEFAULT_FLEET_MAX_PARALLEL }),
  machinesOf: (request, { store, comms }) => resolveFleetTarget(store, comms, request.target),
  perform: (run, spec) => fleetTurns.during(run, spec.maxParallel, 'rotate their certificate', () => rotate(run)),
};

/** How often the store is read while waiting for the new thumbprint to be confirmed. */
const CONFIRM_POLL_MS = 200;
/** The longest one wait for the Tentacle on its new certificate lasts before the store is asked again. */
const CONFIRM_WAIT_MS = 2000;

async function rotate(run: MachineRun): Promise<MachineOutcome> {
  let machine = await current(run);
  const state = await callRetrying(pinned(run, machine), 'certificate.state', {});
  await run.log('info', `Rotating the Tentacle's certificate: it presents ${state.current}.`);
  let next: Thumbprint;
  if (machine.nextThumbprint !== null && state.current === machine.nextThumbprint) {
    next = machine.nextThumbprint;
    await run.log('info', `The Tentacle already presents its new certificate ${next} (an earlier run was cut off after the switch); confirming it.`);
  } else {
    if (state.previous !== null && state.previous !== state.current) {
      // The last rotation was confirmed, but the Tentacle was not told to forget its old certificate.
      await callRetrying(pinned(run, machine), 'certificate.forgetPrevious', { thumbprint: state.previous });
    }
    if (machine.nextThumbprint !== null) await run.log('info', `Finishing the rotation an earlier run left pending (next certificate ${machine.nextThumbprint}).`);
    const prepared = await callRetrying(pinned(run, machine), 'certificate.prepareNext', {});
    next = prepared.next!;
    machine = await run.store.setNextThumbprint(machine.id, next);
    await run.log('info', `The Tentacle made its new certificate ${next}; recorded: the server accepts it beside ${machine.thumbprint} until the Tentacle connects with it.`);
    await switchTo(run, machine, next);
  }
  await confirm(run, machine, next);
  const forgotten = await callRetrying(pinned(run, { ...machine, thumbprint: next, nextThumbprint: null }), 'certificate.forgetPrevious', { thumbprint: machine.thumbprint }).then(
    () => true,
    () => false,
  );
  await run.log(
    'info',
    `Done: the machine's certificate is now ${next}; ${machine.thumbprint} is revoked` +
      (forgotten ? ' and the Tentacle removed it.' : '. The Tentacle could not be told to remove it now; the next rotation does.'),
  );
  return { state: 'Success', exitCode: null };
}

/** The machine as the store has it now (an earlier run, or another node, may have changed its thumbprints). */
async function current(run: MachineRun): Promise<Machine> {
  const machine = await run.store.getMachine(run.machine.id);
  if (!machine) throw new ReefError('REEF_NOT_FOUND', `Machine "${run.machine.name}" was deleted.`);
  return machine;
}

/** The run, calling the Tentacle on a link pinned to its certificate or (mid rotation) its next one. */
function pinned(run: MachineRun, machine: Machine): MachineRun {
  return { ...run, tentacle: routedEndpoint(run.comms, machineAddress(machine)) };
}

/**
 * Tells the Tentacle to switch. Its answer may be lost with the link the switch closes (a
 * polling Tentacle dials again with the new certificate): that is not a failure, the
 * confirmation that follows tells.
 */
async function switchTo(run: MachineRun, machine: Machine, next: Thumbprint): Promise<void> {
  try {
    await callTentacle(pinned(run, machine).tentacle, 'certificate.switch', { thumbprint: next }, { signal: run.signal, deadlineMs: 30_000 });
    await run.log('info', 'The Tentacle switched to its new certificate; waiting for it to connect with it.');
  } catch (err) {
    if (run.signal.aborted || !(err instanceof ReefError) || !RETRYABLE_CALL_CODES.has(err.code)) throw err;
    await run.log('info', `The link closed before the Tentacle answered the switch (${err.message}); waiting for it to connect with the new certificate.`);
  }
}

/**
 * Reaches the Tentacle on its new certificate (a polling one connects with it, a listening
 * one is dialled expecting it), which confirms it on whichever node it reaches
 * (src/server/machine-certificates.ts), until the store says so. In a cluster the Tentacle
 * may come back to another node: the store is asked between short waits. Bounded by the
 * pickup timeout.
 */
async function confirm(run: MachineRun, machine: Machine, next: Thumbprint): Promise<void> {
  const limitMs = run.comms.limits.pickupTimeoutMs;
  const deadline = Date.now() + limitMs;
  const onNew = routedEndpoint(run.comms, machineAddress({ ...machine, thumbprint: next, nextThumbprint: null }));
  let last: unknown;
  while ((await current(run)).thumbprint !== next) {
    const left = deadline - Date.now();
    if (left <= 0) throw notConfirmed(machine, next, limitMs, last);
    try {
      await callTentacle(onNew, 'health.ping', {}, { signal: run.signal, pickupTimeoutMs: Math.min(CONFIRM_WAIT_MS, left), deadlineMs: 30_000 });
    } catch (err) {
      // Not there yet: not connected (or to another node), a listening one dialled the moment before it switched, restarting.
      if (run.signal.aborted || !(err instanceof ReefError)) throw err;
      last = err;
    }
    await sleep(CONFIRM_POLL_MS, undefined, { signal: run.signal });
  }
}

function notConfirmed(machine: Machine, next: Thumbprint, limitMs: number, cause?: unknown): ReefError {
  return new ReefError(
    'REEF_ROTATION_NOT_CONFIRMED',
    `Tentacle "${machine.name}" was told to switch to its new certificate ${next} but did not connect with it within ${formatDuration(limitMs)} (the pickup timeout)` +
      (cause instanceof Error ? `: ${cause.message}` : '.') +
      ` The server accepts ${machine.thumbprint} and ${next} alike until it does; run the rotation again to finish it.`,
    cause instanceof Error ? { cause } : undefined,
  );
}

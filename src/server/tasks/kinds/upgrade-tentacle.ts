import { setTimeout as sleep } from 'node:timers/promises';
import type { UpgradeStatus } from '../../../api/tentacle/index.js';
import { errorMessage, RETRYABLE_CALL_CODES, ReefError } from '../../../errors.js';
import { formatDuration } from '../../../format.js';
import { callTentacle } from '../../tentacle-client.js';
import { compareVersions, NO_RELEASES, releaseFor, type TentacleRelease } from '../../tentacle-releases/index.js';
import { callRetrying, type MachineOutcome, type MachineRun } from '../machine-run.js';
import type { TaskKind } from '../task-kind.js';
import { uploadResumably } from './resumable-upload.js';
import { fleetTurns } from './slots.js';
import { DEFAULT_FLEET_MAX_PARALLEL } from '../../../api/fleet.js';
import { resolveFleetTarget } from '../fleet-targets.js';

export const DEFAULT_ROLLBACK_AFTER_SECONDS = 120;
/** How long past the rollback limit the server waits to hear how the upgrade ended (the watcher's restart, the reconnect). */
const RETURN_MARGIN_MS = 60_000;
/** How often the server asks the Tentacle how its upgrade goes, while it restarts. */
const STATUS_POLL_MS = 1000;

type UpgradeSpec = {
  /** Absent: the newest the server distributes for each machine's architecture. */
  version?: string;
  rollbackAfterSeconds: number;
  maxParallel: number;
};

export const upgradeTentacleKind: TaskKind<'upgrade-tentacle', UpgradeSpec> = {
  specOf: async (request, { releases = NO_RELEASES }) => {
    const distributed = await releases.list();
    if (request.version !== undefined && !distributed.some((r) => r.version === request.version)) {
      throw new ReefError(
        'REEF_NOT_FOUND',
        `The server distributes no Tentacle ${request.version}` +
          (distributed.length ? ` (it has ${[...new Set(distributed.map((r) => r.version))].join(', ')})` : '') +
          '; put reef-tentacle-<version>-linux-<arch> in its downloads folder (docs/operations.md, "Upgrading Tentacles").',
      );
    }
    if (distributed.length === 0) {
      throw new ReefError('REEF_NOT_FOUND', 'The server distributes no Tentacle executable; put reef-tentacle-<version>-linux-<arch> in its downloads folder (docs/operations.md, "Upgrading Tentacles").');
    }
    return {
      ...(request.version !== undefined ? { version: request.version } : {}),
      rollbackAfterSeconds: request.rollbackAfterSeconds ?? DEFAULT_ROLLBACK_AFTER_SECONDS,
      maxParallel: request.maxParallel ?? DEFAULT_FLEET_MAX_PARALLEL,
    };
  },
  machinesOf: (request, { store, comms }) => resolveFleetTarget(store, comms, request.target),
  perform: upgradeTentacle,
};

/**
 * Upgrades one machine's Tentacle: picks the executable for its architecture, streams it
 * (resumable, SHA-256 checked by the Tentacle), has the Tentacle check, swap and restart,
 * and succeeds only once the Tentacle answers as the new version. A Tentacle whose new
 * version did not reach the server in time rolls back by itself and says why.
 */
async function upgradeTentacle(run: MachineRun, spec: UpgradeSpec): Promise<MachineOutcome> {
  const caps = await callRetrying(run, 'capabilities.get', {}, { deadlineMs: 30_000 });
  const current = caps.tentacleVersion;
  if (caps.os.platform !== 'linux') {
    throw new ReefError('REEF_UPGRADE_UNSUPPORTED', `Tentacle ${current} runs on ${caps.os.platform}; the server distributes Tentacles for Linux only.`);
  }
  const arch = caps.os.arch;
  const release = releaseFor(await run.releases.list(), arch, spec.version);
  if (!release) {
    throw new ReefError(
      'REEF_NOT_FOUND',
      `The server distributes no Tentacle${spec.version ? ` ${spec.version}` : ''} for linux-${arch}; put reef-tentacle-${spec.version ?? '<version>'}-linux-${arch} in its downloads folder.`,
    );
  }
  const order = compareVersions(release.version, current);
  if (order === 0) {
    await run.log('info', `Tentacle ${current} already runs the version asked for; nothing to do.`);
    return { state: 'Success', exitCode: null };
  }
  if (order < 0 && spec.version === undefined) {
    await run.log('info', `Tentacle ${current} is newer than the newest the server distributes (${release.version}); left as it is.`);
    return { state: 'Success', exitCode: null };
  }
  return fleetTurns.during(run, spec.maxParallel, 'upgrade', async () => {
    await run.log('info', `Upgrading Tentacle ${current} to ${release.version} (${release.name}, SHA-256 ${release.sha256}).`);
    return install(run, release, spec, current);
  });
}

async function install(run: MachineRun, release: TentacleRelease, spec: UpgradeSpec, current: string): Promise<MachineOutcome> {
  const target = { version: release.version, size: release.size, sha256: release.sha256 };
  await uploadResumably(run, `the Tentacle (${release.name})`, release.size, {
    begin: async () => (await callRetrying(run, 'upgrade.begin', target)).offset,
    open: (offset) => run.releases.open(release, offset),
    send: (offset, body) => callTentacle(run.tentacle, 'upgrade.upload', { ...target, offset }, { signal: run.signal, deadlineMs: 0, body }),
  });
  await run.log('info', `The Tentacle received ${release.name} and verified its SHA-256.`);
  const rollbackAfterMs = spec.rollbackAfterSeconds * 1000;
  // Not retried: a second apply would swap again. A link lost under it is settled by asking upgrade.status below.
  try {
    const applied = await callTentacle(run.tentacle, 'upgrade.apply', { version: release.version, sha256: release.sha256, rollbackAfterMs }, { signal: run.signal, deadlineMs: 120_000 });
    await run.log(
      'info',
      `The new executable runs and reports ${release.version}: it replaced ${applied.executable} (the previous one is kept as ${applied.executable}.previous), ` +
        `and the Tentacle restarts. It goes back to ${applied.previousVersion} by itself unless the new version reaches the server within ${formatDuration(rollbackAfterMs)}. ` +
        'Scripts running on the machine carry on across the restart.',
    );
  } catch (err) {
    if (!(err instanceof ReefError) || !RETRYABLE_CALL_CODES.has(err.code)) throw err;
    await run.log('info', `The link dropped while the Tentacle applied the upgrade (${err.message}); asking it how the upgrade went.`);
  }
  return awaitReturn(run, release, current, rollbackAfterMs);
}

/** Asks the Tentacle how its upgrade went until the new version answers, it says it rolled back, or the bound passes. */
async function awaitReturn(run: MachineRun, release: TentacleRelease, previous: string, rollbackAfterMs: number): Promise<MachineOutcome> {
  const deadline = Date.now() + rollbackAfterMs + RETURN_MARGIN_MS;
  let last: UpgradeStatus | undefined;
  let lastError: string | undefined;
  while (Date.now() < deadline) {
    try {
      last = await callTentacle(run.tentacle, 'upgrade.status', {}, { signal: run.signal, deadlineMs: 15_000, pickupTimeoutMs: Math.max(1000, deadline - Date.now()) });
      if (last.toVersion === release.version && last.state === 'rolled-back') {
        throw new ReefError('REEF_UPGRADE_ROLLED_BACK', last.reason ?? `Tentacle ${release.version} did not come back in time; the Tentacle rolled back to ${last.version}.`);
      }
      if (last.version === release.version && last.state === 'confirmed') {
        await run.store.touchMachine(run.machine.thumbprint, { version: release.version });
        await run.log('info', `Tentacle ${release.version} is back and answers the server (upgraded from ${previous}).`);
        return { state: 'Success', exitCode: null };
      }
    } catch (err) {
      if (!(err instanceof ReefError) || !RETRYABLE_CALL_CODES.has(err.code) || run.signal.aborted) throw err;
      lastError = errorMessage(err);
    }
    await sleep(STATUS_POLL_MS, undefined, { signal: run.signal });
  }
  throw new ReefError(
    'REEF_UPGRADE_ROLLED_BACK',
    `Tentacle "${run.machine.name}" did not come back as ${release.version} within ${formatDuration(rollbackAfterMs + RETURN_MARGIN_MS)}` +
      (last ? ` (it last answered as ${last.version}, upgrade ${last.state})` : '') +
      (lastError ? `; the last attempt to reach it: ${lastError}` : '') +
      '. If the new version does not reach the server, the Tentacle goes back to the previous one by itself.',
  );
}

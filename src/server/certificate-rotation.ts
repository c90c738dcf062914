/**
 * Server certificate rotation (docs/operations.md, docs/security.md). Tentacles pin the
 * server's thumbprint, so the certificate changes in steps that never leave one without a
 * way in:
 *
 * 1. begin: a next certificate is made and stored beside the current one; every Tentacle
 *    that connects is told, over its pinned link, to trust the next thumbprint too
 *    (`trust.add`), and the store records that it confirmed.
 * 2. complete: every node presents the next certificate. A Tentacle that has not learnt it
 *    (offline all along) asks for the one it trusts by thumbprint (certificate-request.ts);
 *    the node presents the old one to it, and tells it the new thumbprint the same way.
 * 3. after the grace period: Tentacles connected on the new certificate are told to drop
 *    the old thumbprint (`trust.drop`). The old certificate stays presentable on request
 *    until the next rotation begins.
 */
import { isReefError, errorMessage, ReefError } from '../errors.js';
import type { Logger } from '../logging.js';
import type { CertificateRotationView } from '../api/contract.js';
import type { CommsServer } from '../comms/index.js';
import type { RpcClient } from '../comms/rpc/client.js';
import { identityFromPem, type CertificateIdentity } from '../pki/certificate.js';
import { saveIdentity } from '../pki/identity-files.js';
import type { Thumbprint } from '../pki/thumbprint.js';
import { systemActor } from './audit/actor.js';
import type { AuditLog } from './audit/log.js';
import type { ClusterBus } from './cluster/bus.js';
import { replaceClusterIdentity } from './cluster/identity.js';
import type { CertificateRotation, Store, StoredCertificate } from './store/types.js';
import { callTentacle, connectionEndpoint } from './tentacle-client.js';

/** How long after completion Tentacles keep the old thumbprint when no grace period is given. */
export const DEFAULT_ROTATION_GRACE_MS = 24 * 3600 * 1000;
/** How often connected Tentacles are checked and the rotation re-read from the store. */
export const DEFAULT_ROTATION_SWEEP_MS = 30_000;

/** Where a node keeps its certificates in its data directory (loadOrCreateIdentity's base names). */
export const SERVER_IDENTITY = 'server';
const NEXT_IDENTITY = 'server-next';
const PREVIOUS_IDENTITY = 'server-previous';

export interface CertificateRotatorOptions {
  store: Store;
  comms: CommsServer;
  bus: ClusterBus;
  logger: Logger;
  dataDir: string;
  clustered: boolean;
  /** The certificate this node presents now. */
  current: CertificateIdentity;
  /** Makes the next certificate (the same names as the current one). */
  generate(): Promise<CertificateIdentity>;
  /** This node now presents `identity` (comms, portal, server info). */
  onSwitch(identity: CertificateIdentity): void;
  /** Where each Tentacle's confirmations are recorded (the routes record starting and completing). */
  audit: AuditLog;
  sweepMs?: number;
}

export class CertificateRotator {
  private latest: { rotation: CertificateRotation; old: CertificateIdentity; next: CertificateIdentity } | null = null;
  private current: CertificateIdentity;
  /** Machines known (per rotation) to have confirmed trust, or dropping the old thumbprint. */
  private trusting = new Set<string>();
  private dropped = new Set<string>();
  private readonly busy = new Set<Thumbprint>();
  /**
   * Tentacles with nothing left to do in a phase of the rotation (`<id>/<phase>`), so that
   * the sweep does not look every connected Tentacle up in the store for ever after.
   */
  private settled = new Map<Thumbprint, string>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: CertificateRotatorOptions) {
    this.current = options.current;
  }

  /** Reads the rotation from the store, then follows connections, the bus and a timer. */
  async start(): Promise<void> {
    await this.refresh();
    this.options.comms.on('connected', (client) => void this.visit(client));
    this.options.bus.subscribe((event) => {
      if (event.kind === 'certificate' || event.kind === 'resync') void this.refreshAndSweep();
    });
    this.sweepTimer = setInterval(() => void this.refreshAndSweep(), this.options.sweepMs ?? DEFAULT_ROTATION_SWEEP_MS);
    this.sweepTimer.unref();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweepTimer);
  }

  /**
   * A certificate of this server other than the presented one, asked for by thumbprint:
   * the old one of the latest rotation (for Tentacles that missed it), or the next one.
   */
  presentable(thumbprint: string): CertificateIdentity | undefined {
    const latest = this.latest;
    if (!latest) return undefined;
    return [latest.old, latest.next].find((identity) => identity.thumbprint === thumbprint);
  }

  /** The certificate a listening Tentacle that missed the rotation still trusts: dialled with when it refuses the new one. */
  earlierIdentities(): CertificateIdentity[] {
    return this.latest?.rotation.completedAt ? [this.latest.old] : [];
  }

  async begin(by: string, graceMs = DEFAULT_ROTATION_GRACE_MS): Promise<CertificateRotationView> {
    const next = await this.options.generate();
    const rotation = await this.options.store.insertCertificateRotation({ old: stored(this.current), next: stored(next), graceMs, startedBy: by });
    // Kept beside the current one, so the data directory alone holds both (a single node's backup).
    if (!this.options.clustered) await saveIdentity(this.options.dataDir, next, NEXT_IDENTITY);
    this.options.logger.info({ by, rotation: rotation.id, oldThumbprint: rotation.old.thumbprint, newThumbprint: rotation.next.thumbprint }, 'certificate rotation started');
    this.options.bus.publish({ kind: 'certificate' });
    await this.refreshAndSweep();
    return this.status();
  }

  async complete(by: string): Promise<CertificateRotationView> {
    const latest = (await this.options.store.latestCertificateRotation()) ?? notStarted();
    if (latest.completedAt) throw notStarted(latest);
    const next = identityFromPem(latest.next.certPem, latest.next.keyPem);
    // The lasting record first (what nodes present when they start), then the rotation's state:
    // a crash between the two leaves it under way, and completing again finishes it.
    if (this.options.clustered) {
      await replaceClusterIdentity(this.options.store.coordination, next);
    } else {
      const old = identityFromPem(latest.old.certPem, latest.old.keyPem);
      await saveIdentity(this.options.dataDir, old, PREVIOUS_IDENTITY);
      await saveIdentity(this.options.dataDir, next, SERVER_IDENTITY);
    }
    const completed = (await this.options.store.completeCertificateRotation(latest.id)) ?? latest;
    this.options.logger.info({ by, rotation: completed.id, newThumbprint: completed.next.thumbprint }, 'certificate rotation completed');
    this.options.bus.publish({ kind: 'certificate' });
    await this.refreshAndSweep();
    return this.status();
  }

  async status(): Promise<CertificateRotationView> {
    const rotation = (await this.options.store.latestCertificateRotation()) ?? notStarted();
    const [machines, trust] = await Promise.all([this.options.store.listMachines(), this.options.store.listCertificateTrust(rotation.id)]);
    const trusted = new Set(trust.map((t) => t.machineId));
    const completedAt = rotation.completedAt;
    return {
      id: rotation.id,
      state: completedAt ? 'completed' : 'under-way',
      oldThumbprint: rotation.old.thumbprint,
      newThumbprint: rotation.next.thumbprint,
      startedBy: rotation.startedBy,
      startedAt: rotation.startedAt,
      completedAt,
      graceSeconds: Math.round(rotation.graceMs / 1000),
      dropOldAfter: completedAt ? new Date(Date.parse(completedAt) + rotation.graceMs).toISOString() : null,
      machines: machines.length,
      trusting: machines.filter((m) => trusted.has(m.id)).length,
      dropped: trust.filter((t) => t.droppedAt !== null && machines.some((m) => m.id === t.machineId)).length,
      notTrusting: machines
        .filter((m) => !trusted.has(m.id))
        .map((m) => ({ id: m.id, name: m.name, thumbprint: m.thumbprint, lastSeenAt: m.lastSeenAt, connected: this.options.comms.links.connections(m.thumbprint).length > 0 }))
        .sort((a, b) => a.name.localeCompare(b.name)),
    };
  }

  /** Re-reads the rotation (another node may have begun or completed it), then visits every connected Tentacle. */
  private refreshAndSweep(): Promise<void> {
    return this.refresh().then(async () => {
      const seen = new Set<Thumbprint>();
      for (const client of this.options.comms.links.all()) {
        if (seen.has(client.peer.thumbprint)) continue;
        seen.add(client.peer.thumbprint);
        await this.visit(client);
      }
    });
  }

  private refresh(): Promise<void> {
    this.refreshing = this.refreshing.then(async () => {
      if (this.closed) return;
      try {
        const rotation = await this.options.store.latestCertificateRotation();
        if (!rotation) return;
        if (rotation.id !== this.latest?.rotation.id) {
          const trust = await this.options.store.listCertificateTrust(rotation.id);
          this.trusting = new Set(trust.map((t) => t.machineId));
          this.dropped = new Set(trust.filter((t) => t.droppedAt).map((t) => t.machineId));
          this.settled = new Map();
        }
        const reuse = this.latest?.rotation.id === rotation.id ? this.latest : null;
        this.latest = {
          rotation,
          old: reuse?.old ?? identityFromPem(rotation.old.certPem, rotation.old.keyPem),
          next: reuse?.next ?? identityFromPem(rotation.next.certPem, rotation.next.keyPem),
        };
        if (rotation.completedAt && this.current.thumbprint !== rotation.next.thumbprint) this.switchTo(this.latest.next);
      } catch (err) {
        this.options.logger.warn({ err: errorMessage(err) }, 'certificate rotation: could not read the rotation from the store; trying again at the next sweep');
      }
    });
    return this.refreshing;
  }

  private switchTo(identity: CertificateIdentity): void {
    const previous = this.current.thumbprint;
    this.current = identity;
    this.options.comms.setIdentity(identity);
    this.options.onSwitch(identity);
    this.options.logger.info(
      { previous, thumbprint: identity.thumbprint },
      'certificate rotation: this node now presents the new server certificate (the old one only to Tentacles that ask for it by thumbprint)',
    );
  }

  /** Brings one connected Tentacle along: trust the new thumbprint, then (after the grace period) drop the old. */
  private async visit(client: RpcClient): Promise<void> {
    const latest = this.latest;
    const { thumbprint } = client.peer;
    if (!latest || this.closed || this.busy.has(thumbprint)) return;
    const { rotation } = latest;
    const completedAt = rotation.completedAt ? Date.parse(rotation.completedAt) : null;
    const dropDue = completedAt !== null && Date.now() >= completedAt + rotation.graceMs;
    const phase = `${rotation.id}/${completedAt === null ? 'under-way' : dropDue ? 'drop' : 'completed'}`;
    // A link made on the old certificate still has something to do (move to the new one).
    if (this.settled.get(thumbprint) === phase && client.peer.presented !== rotation.old.thumbprint) return;
    this.busy.add(thumbprint);
    try {
      const machine = await this.options.store.getMachineByThumbprint(thumbprint);
      if (!machine) return;
      if (!this.trusting.has(machine.id)) {
        await callTentacle(connectionEndpoint(client), 'trust.add', { thumbprint: rotation.next.thumbprint });
        await this.options.store.recordCertificateTrust(rotation.id, machine.id, 'trusted');
        this.trusting.add(machine.id);
        await this.record('machine.server-certificate-trusted', machine, rotation.id, rotation.next.thumbprint);
      }
      const onOld = client.peer.presented === rotation.old.thumbprint;
      if (completedAt !== null && onOld) {
        // It got in on the old certificate by asking for it; it trusts the new one now, so
        // its next connection gets that (and can later be told to drop the old). A link
        // dialled to a listening Tentacle is kept: it was made for a call, and the next
        // dial (after the idle timeout) uses the new certificate.
        if (client.peer.carrier === 'listening') return;
        this.options.logger.info({ machine: machine.name }, 'certificate rotation: closing a link made on the old certificate so that the Tentacle reconnects on the new one');
        client.close(new ReefError('REEF_TRUST_REVOKED', 'The server certificate was rotated: reconnect to get the new one.'));
        return;
      }
      if (dropDue && !onOld && !this.dropped.has(machine.id)) {
        await callTentacle(connectionEndpoint(client), 'trust.drop', { thumbprint: rotation.old.thumbprint });
        await this.options.store.recordCertificateTrust(rotation.id, machine.id, 'dropped');
        this.dropped.add(machine.id);
        await this.record('machine.server-certificate-dropped', machine, rotation.id, rotation.old.thumbprint);
      }
      this.settled.set(thumbprint, phase);
    } catch (err) {
      if (this.closed) return;
      const older = isReefError(err, 'REEF_UNKNOWN_METHOD');
      // Said once per phase: asking again would only fill the log.
      if (older) this.settled.set(thumbprint, phase);
      this.options.logger.warn(
        { thumbprint, err: errorMessage(err) },
        older
          ? 'certificate rotation: this Tentacle is too old to be told a new server thumbprint; trust it there by hand (docs/operations.md)'
          : 'certificate rotation: could not update the Tentacle\'s trust now; trying again when it next connects or at the next sweep',
      );
    } finally {
      this.busy.delete(thumbprint);
    }
  }

  /** In the audit log (which also logs it), as the server acting on its own. */
  private async record(kind: 'machine.server-certificate-trusted' | 'machine.server-certificate-dropped', machine: { id: string; name: string }, rotation: string, thumbprint: string): Promise<void> {
    await this.options.audit.record({ actor: systemActor('certificate rotation'), kind, target: { id: machine.id, name: machine.name }, details: { rotation, thumbprint } });
  }
}

function stored(identity: CertificateIdentity): StoredCertificate {
  return { thumbprint: identity.thumbprint, certPem: identity.certPem, keyPem: identity.keyPem };
}

function notStarted(completed?: CertificateRotation): never {
  throw new ReefError(
    'REEF_ROTATION_NOT_STARTED',
    completed
      ? `No server certificate rotation is under way: the last one (${completed.id}) was completed at ${completed.completedAt}. Start another with "reef server rotate-certificate".`
      : 'No server certificate rotation has been started. Start one with "reef server rotate-certificate".',
  );
}

/**
 * The server's side of Tentacle certificate rotation (docs/operations.md "Rotating Tentacle
 * certificates"; the task is tasks/kinds/rotate-machine-certificate.ts). While a machine has
 * a next thumbprint, a connection presenting it is that machine's (the comms trust check and
 * the listening dialer accept either). The first connection made with it confirms the
 * switch, on whichever node it arrives: the next thumbprint becomes the machine's, and the
 * old one is revoked (its live links closed on every node; refused from then on, since no
 * machine has it).
 */
import { errorMessage } from '../errors.js';
import type { Logger } from '../logging.js';
import type { CommsServer } from '../comms/index.js';
import type { Thumbprint } from '../pki/thumbprint.js';
import { systemActor } from './audit/actor.js';
import type { AuditLog } from './audit/log.js';
import type { ClusterBus } from './cluster/bus.js';
import type { Machine, Store } from './store/types.js';

export interface MachineCertificateOptions {
  store: Store;
  comms: CommsServer;
  bus: ClusterBus;
  audit: AuditLog;
  logger: Logger;
}

/** Follows connections (confirming switches) and revocations from other nodes (closing links). */
export function watchMachineCertificates(options: MachineCertificateOptions): void {
  const { store, comms, bus, logger } = options;
  comms.on('connected', (client) => {
    const { thumbprint } = client.peer;
    void store
      .getMachineByNextThumbprint(thumbprint)
      .then((machine) => (machine ? confirmNextCertificate(options, machine, thumbprint) : false))
      .catch((err) => logger.warn({ thumbprint, err: errorMessage(err) }, 'certificate rotation: could not confirm a Tentacle\'s new certificate; it is confirmed when it next connects'));
  });
  bus.subscribe((event) => {
    if (event.kind === 'revoked') closeRevoked(comms, event.thumbprint);
  });
}

/**
 * Makes `thumbprint` the machine's, if it is still its next one (only one node wins), and
 * revokes the one it replaces. Resolves true when this call did it.
 */
export async function confirmNextCertificate(options: MachineCertificateOptions, machine: Pick<Machine, 'id' | 'name'>, thumbprint: Thumbprint): Promise<boolean> {
  const promoted = await options.store.promoteNextThumbprint(machine.id, thumbprint);
  if (!promoted) return false;
  const { previous } = promoted;
  options.logger.info({ machine: machine.name, previous, thumbprint }, 'certificate rotation: the Tentacle connected with its new certificate; the old one is revoked');
  closeRevoked(options.comms, previous);
  options.bus.publish({ kind: 'revoked', thumbprint: previous });
  await options.audit.record({
    actor: systemActor('Tentacle certificate rotation'),
    kind: 'machine.certificate-rotated',
    target: { id: machine.id, name: machine.name },
    details: { previous, thumbprint },
  });
  return true;
}

function closeRevoked(comms: CommsServer, thumbprint: Thumbprint): void {
  comms.disconnect(thumbprint, 'its Tentacle certificate was rotated: the old certificate is revoked');
}

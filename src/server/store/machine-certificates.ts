/**
 * A machine's pending next thumbprint during a Tentacle certificate rotation
 * (src/server/tasks/kinds/rotate-machine-certificate.ts): recorded over the pinned link,
 * accepted beside the current one, made current once the Tentacle connects with it.
 */
import { ReefError } from '../../errors.js';
import { normalizeThumbprint } from '../../pki/thumbprint.js';
import type { MachineRow } from './rows.js';
import { sql, type Database } from './sql.js';
import type { Store } from './types.js';

type MachineCertificates = Pick<Store, 'getMachineByNextThumbprint' | 'setNextThumbprint' | 'promoteNextThumbprint'>;

export function machineCertificates(database: Database, getMachine: Store['getMachine']): MachineCertificates {
  const reload = async (id: string) => {
    const machine = await getMachine(id);
    if (!machine) throw new ReefError('REEF_NOT_FOUND', `No machine has id ${id}; it may have been deleted.`);
    return machine;
  };
  return {
    getMachineByNextThumbprint: async (thumbprint) => {
      const row = await database.one<{ id: string }>(sql`SELECT id FROM machines WHERE next_thumbprint = ${normalizeThumbprint(thumbprint)}`);
      return row ? getMachine(row.id) : null;
    },

    // Races with another node end in the unique index: the retry then reports the conflict.
    setNextThumbprint: async (machineId, thumbprint) => {
      const tp = normalizeThumbprint(thumbprint);
      await database.transaction(async (db) => {
        const holders = await db.all<Pick<MachineRow, 'id' | 'name' | 'thumbprint' | 'next_thumbprint'>>(
          sql`SELECT id, name, thumbprint, next_thumbprint FROM machines WHERE id = ${machineId} OR thumbprint = ${tp} OR next_thumbprint = ${tp}`,
        );
        const self = holders.find((m) => m.id === machineId);
        if (!self) throw new ReefError('REEF_NOT_FOUND', `No machine has id ${machineId}; it may have been deleted.`);
        const taken = holders.find((m) => m.thumbprint === tp || (m.id !== machineId && m.next_thumbprint === tp));
        if (taken) {
          throw new ReefError(
            'REEF_THUMBPRINT_TAKEN',
            `The certificate thumbprint ${tp} offered as the next one of machine "${self.name}" is already ` +
              (taken.thumbprint === tp ? `the certificate of machine "${taken.name}"` : `the pending next certificate of machine "${taken.name}"`) +
              '; it was not recorded. A Tentacle makes a new key for each rotation, so this is a copied certificate or a Tentacle that misbehaves: check the machine.',
          );
        }
        if (self.next_thumbprint !== tp) await db.run(sql`UPDATE machines SET next_thumbprint = ${tp} WHERE id = ${machineId}`);
      });
      return reload(machineId);
    },

    promoteNextThumbprint: async (machineId, thumbprint) => {
      const tp = normalizeThumbprint(thumbprint);
      const previous = await database.transaction(async (db) => {
        const row = await db.one<Pick<MachineRow, 'thumbprint'>>(sql`SELECT thumbprint FROM machines WHERE id = ${machineId} AND next_thumbprint = ${tp}`);
        if (!row) return null;
        const changed = await db.run(sql`UPDATE machines SET thumbprint = ${tp}, next_thumbprint = NULL WHERE id = ${machineId} AND next_thumbprint = ${tp}`);
        return changed > 0 ? row.thumbprint : null;
      });
      return previous === null ? null : { machine: await reload(machineId), previous };
    },
  };
}

import { audit } from './audit.js';
import { auth } from './auth.js';
import { certificateRotations } from './certificate-rotations.js';
import { coordination } from './cluster.js';
import { groups } from './groups.js';
import { joinTokens } from './join-tokens.js';
import { logs } from './logs.js';
import { machineCertificates } from './machine-certificates.js';
import { machines } from './machines.js';
import type { Database } from './sql.js';
import { tasks } from './tasks.js';
import type { Store } from './types.js';

/** The Store on an opened, migrated database: the aggregates, each written once for both dialects. */
export function storeOn(database: Database): Store {
  const machineStore = machines(database);
  return {
    ...groups(database),
    ...machineStore,
    ...machineCertificates(database, machineStore.getMachine),
    ...auth(database),
    ...joinTokens(database),
    ...certificateRotations(database),
    ...tasks(database),
    ...logs(database),
    ...audit(database),
    coordination: coordination(database),
    close: () => database.close(),
  };
}

/**
 * The soak's machines as the server sees them: registered over the REST API as
 * `tentacle register-with` does, then watched through GET /api/machines.
 */
import type { ApiClient } from '../../src/api/client.js';
import type { MachineView, RegisterMachineRequest } from '../../src/api/contract.js';
import { VERSION } from '../../src/version.js';

export interface SoakMachine {
  name: string;
  thumbprint: string;
}

/** Registrations in flight at once: enough to overlap round trips, not a flood. */
const REGISTRATION_CONCURRENCY = 16;

/** Registers each as a polling target in `environment` with `role`. */
export async function registerMachines(api: ApiClient, machines: readonly SoakMachine[], environment: string, role: string): Promise<void> {
  const queue = [...machines];
  const register = async () => {
    for (let machine = queue.shift(); machine; machine = queue.shift()) {
      const request: RegisterMachineRequest = {
        name: machine.name,
        kind: 'target',
        thumbprint: machine.thumbprint,
        commsStyle: 'polling',
        environments: [environment],
        roles: [role],
        tentacleVersion: VERSION,
      };
      await api.json('POST', '/api/machines', { body: request });
    }
  };
  await Promise.all(Array.from({ length: REGISTRATION_CONCURRENCY }, register));
}

export async function machinesIn(api: ApiClient, environment: string): Promise<MachineView[]> {
  return (await api.json<{ items: MachineView[] }>('GET', `/api/machines?environment=${encodeURIComponent(environment)}`)).items;
}

/**
 * Machines whose link dropped since `since` (epoch ms): offline now, or connected again
 * after it. The server's view, so a tentacle that lost its link and came back counts too.
 */
export function relinkedSince(machines: readonly MachineView[], since: number): number {
  return machines.filter((m) => !m.online || m.connections.some((c) => Date.parse(c.connectedAt) > since)).length;
}
